"""Weakly-supervised FPSNet training on image tags only (``wiml train-weak``).

Binary cross-entropy on slice tags, class-balanced sampling, augmentation, validation on the val patients
(accuracy, ROC AUC via MONAI's ``compute_roc_auc``, F1). Nie et al., IEEE JBHI 2023, Sec. II-A: the weak
model's Grad-CAM proposes the initial masks of weakly-interactive annotation.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from wiml.config import save_config, to_dict
from wiml.data.slices import read_manifest
from wiml.data.transforms import make_augmentation
from wiml.errors import InputError
from wiml.layout import TrainingLayout
from wiml.networks.fpsnet import FPSNet, FPSNetConfig, tag_probability
from wiml.training.config import WeakConfig
from wiml.training.data import SliceDataset, WeightedEpochSampler, class_balanced_weights
from wiml.training.distributed import cleanup
from wiml.training.losses import weak_loss
from wiml.training.trainer import Trainer, start_run

logger = logging.getLogger(__name__)


def tag_metrics(prob: np.ndarray, tag: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Slice-tag classification metrics.

    Args:
        prob: (N,) predicted probability that the target is present.
        tag: (N,) true tags in {0, 1}.
        threshold: decision threshold for accuracy / F1 / sensitivity / specificity.

    Returns:
        ``accuracy``, ``auc`` (MONAI ``compute_roc_auc``; NaN when only one class is present), ``f1``,
        ``sensitivity``, ``specificity`` (NaN where undefined), ``n``, ``n_positive``.
    """
    from monai.metrics import compute_roc_auc

    prob = np.asarray(prob, dtype=np.float64).ravel()
    tag = np.asarray(tag).astype(np.int64).ravel()
    pred = prob >= threshold
    pos = tag == 1
    tp, fp = int((pred & pos).sum()), int((pred & ~pos).sum())
    fn, tn = int((~pred & pos).sum()), int((~pred & ~pos).sum())
    nan = float("nan")
    if pos.any() and (~pos).any():
        auc = float(compute_roc_auc(torch.as_tensor(prob), torch.as_tensor(tag)))
    else:
        auc = nan
    return {
        "accuracy": (tp + tn) / max(1, len(tag)),
        "auc": auc,
        "f1": 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else nan,
        "sensitivity": tp / (tp + fn) if (tp + fn) else nan,
        "specificity": tn / (tn + fp) if (tn + fp) else nan,
        "n": float(len(tag)),
        "n_positive": float(pos.sum()),
    }


def weak_val_step(model: torch.nn.Module, batch: dict) -> dict[str, np.ndarray]:
    """Per-slice tag probability, true tag and BCE of a validation batch (a ``Trainer`` ``val_step``)."""
    from wiml.training.losses import tag_loss

    out = model(batch["image"])
    prob = tag_probability(out.cls)
    bce = torch.stack([tag_loss(out.cls[i : i + 1], batch["tag"][i : i + 1]) for i in range(len(prob))])
    return {"prob": prob.cpu().numpy(), "tag": batch["tag"].cpu().numpy(), "loss": bce.cpu().numpy()}


def weak_val_metrics(values: dict[str, np.ndarray]) -> dict[str, float]:
    """Reduce ``weak_val_step`` outputs: mean BCE (``loss``) and :func:`tag_metrics`."""
    metrics = tag_metrics(values["prob"], values["tag"])
    return {"loss": float(np.mean(values["loss"])), **{k: metrics[k] for k in ("accuracy", "auc", "f1")}}


def infer_in_channels(records) -> int:
    """Channels C of the first prepared slice."""
    from wiml.data.slices import load_slice

    return int(load_slice(records[0])[0].shape[0])


def model_config_for_data(model_cfg: FPSNetConfig, channels: int, where: Path) -> FPSNetConfig:
    """``model_cfg`` with ``in_channels: 0`` filled in with the data's ``channels`` (C of the slices).

    Raises:
        InputError: ``model_cfg.in_channels`` is set and differs from ``channels``, naming the slice
            ``where``.
    """
    if model_cfg.in_channels == 0:
        return dataclasses.replace(model_cfg, in_channels=channels)
    if model_cfg.in_channels != channels:
        raise InputError(
            f"model.in_channels={model_cfg.in_channels} but the prepared slices have {channels} "
            "channel(s); set model.in_channels=0 to take it from the data",
            where,
        )
    return model_cfg


def build_model(config: WeakConfig, records) -> FPSNet:
    """FPSNet from the config; ``model.in_channels: 0`` is filled in from the data."""
    return FPSNet(model_config_for_data(config.model, infer_in_channels(records), records[0].path))


def train_weak(
    config: WeakConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    stop_after: int | None = None,
) -> dict:
    """Train FPSNet on the tags of ``data_dir``'s training split; validate on its val split.

    Args:
        config: resolved ``WeakConfig``.
        data_dir: a prepared folder (``manifest.csv``).
        out_dir: run folder (checkpoints, ``state.pt``, ``log.csv``, ``curves.png``, ``config.yaml``).
        resume: continue from ``out_dir/state.pt``.
        stop_after: stop after this many epochs in total (tests; None = ``trainer.epochs``).

    Returns:
        The trainer summary plus ``n_train``, ``n_val``, ``out_dir``, ``parameters``.

    Raises:
        InputError: no training slices, or only one tag class among them.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    tc = config.trainer
    dist, device = start_run(tc)
    try:
        train_records = read_manifest(data_dir, config.data.train_split)
        val_records = read_manifest(data_dir, config.data.val_split)
        if not train_records:
            raise InputError(f"no slices in split {config.data.train_split!r}", data_dir / "manifest.csv")
        tags = np.array([r.tag for r in train_records])
        if len(np.unique(tags)) < 2:
            raise InputError(
                f"training split has only tag {tags[0]} slices; tags-only training needs both classes",
                data_dir / "manifest.csv",
            )
        model = build_model(config, train_records).to(device)
        resolved = dataclasses.replace(config, model=model.config)
        if dist.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            save_config(resolved, TrainingLayout(out_dir).config)
        train_ds = SliceDataset(
            train_records, make_augmentation(config.augment), use_masks=False, seed=tc.seed
        )
        n_samples = tc.samples_per_epoch or len(train_ds)
        sampler = WeightedEpochSampler(
            class_balanced_weights(tags), n_samples, tc.seed, dist.rank, dist.world_size
        )
        train_loader = DataLoader(
            train_ds,
            batch_size=tc.batch_size,
            sampler=sampler,
            num_workers=tc.num_workers,
            drop_last=len(sampler) > tc.batch_size,
        )
        val_loader = None
        if val_records and dist.is_main:
            val_loader = DataLoader(
                SliceDataset(val_records, None, use_masks=False),
                batch_size=tc.batch_size,
                shuffle=False,
                num_workers=tc.num_workers,
            )
        elif not val_records:
            logger.warning(
                "no %r slices: no validation, best.safetensors = last epoch", config.data.val_split
            )
        trainer = Trainer(
            model,
            weak_loss,
            train_loader,
            out_dir,
            tc,
            config.optim,
            device,
            val_loader=val_loader,
            val_step=weak_val_step,
            val_metrics=weak_val_metrics,
            dist=dist,
            kind="weak",
            run_config={
                **to_dict(resolved),
                "data_dir": str(data_dir),
                "image_size": int(train_ds[0]["image"].shape[-1]),
            },
        )
        summary = trainer.fit(resume=resume, stop_after=stop_after)
    finally:
        cleanup(dist)
    from wiml.networks.fpsnet import count_parameters

    summary.update(
        n_train=len(train_records),
        n_val=len(val_records),
        out_dir=str(out_dir),
        parameters=count_parameters(model),
        world_size=dist.world_size,
    )
    return summary
