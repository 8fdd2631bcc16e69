"""Mixed-supervised FPSNet training (``wiml train-msl``) and the supervised baselines that share its harness.

Nie et al., IEEE JBHI 2023, Sec. II-C: FPSNet learns from the image tag of every training slice plus K strong
labels (K = 5). ``mode`` chooses what is trained on:

* ``mixed`` (WIML's MSL): every training slice with its tag; K strong slices with their masks, over-sampled
  so that every batch holds ``strong_per_batch`` of them (:mod:`wiml.training.mixed`).
* ``strong_only`` (baseline): only the K strong slices, segmentation loss only (no tags).
* ``full`` (upper bound): every training slice with its ground-truth mask, segmentation loss only.

Validation: Dice on the val patients (``dice`` = mean per-patient 3-D Dice, the monitor; ``dice_slice`` =
mean Dice of the val slices that contain the target).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader

from wiml.config import save_config, to_dict
from wiml.data.slices import SliceRecord, read_manifest
from wiml.data.transforms import AugmentConfig, make_augmentation
from wiml.errors import ConfigError, InputError
from wiml.layout import RunLayout, TrainingLayout
from wiml.networks.fpsnet import FPSNet, FPSNetConfig, foreground_probability
from wiml.training.config import DataConfig, OptimConfig, TrainerConfig
from wiml.training.data import SliceDataset
from wiml.training.distributed import cleanup
from wiml.training.mixed import MixedLossConfig, MixedSampler, make_mixed_loss
from wiml.training.strong_labels import (
    annotation_strong_labels,
    gt_strong_labels,
    select_strong_slices,
    slice_name,
    wia_strong_labels,
)
from wiml.training.trainer import Trainer, start_run
from wiml.utils import atomic_write_text

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class StrongConfig:
    """Where the K strong labels come from.

    Attributes:
        source: ``gt`` (ground truth of K chosen training slices), ``wia`` (a WIA ``result`` folder of
            prepared-slice labels) or ``annotations`` (the annotator's ``result`` folder on the source images
            or volumes: strong labels and the person's tags CSVs, :func:`annotation_strong_labels`; every
            label found is used).
        k: number of strong labels. ``gt``: K slices are chosen; ``wia``: K of the labels found are used
            (chosen by ``select`` among them; fewer than K found is an error); None = every label found
            (``wia`` only).
        select: ``spread`` or ``random``: how the K slices (``gt``) or the K of the WIA labels are chosen.
        seed: seed of ``random``.
        wia_dir: the WIA ``result`` folder (``wia``).
        annotations_dir: the annotator's ``result`` folder (``annotations``).
    """

    RANGES: ClassVar[dict[str, str]] = {
        "k": ">= 1",
        "seed": ">= 0",
    }

    source: Literal["gt", "wia", "annotations"] = "gt"
    k: int | None = 5
    select: Literal["spread", "random"] = "spread"
    seed: int = 0
    wia_dir: str | None = None
    annotations_dir: str | None = None


@dataclasses.dataclass
class MSLConfig:
    """``wiml train-msl`` (and the supervised baselines).

    Attributes:
        model: FPSNet architecture (ignored when ``init`` is a checkpoint: the checkpoint's is used).
        trainer: loop settings; ``monitor: dice``.
        optim: AdamW + cosine.
        augment: augmentation (applied to image and strong mask alike).
        data: splits.
        strong: strong-label source.
        loss: MSL loss weights and kind.
        mode: ``mixed`` | ``strong_only`` | ``full`` (see the module docstring).
        init: ``weak`` (the weak checkpoint, ``init_checkpoint``), ``scratch``.
        init_checkpoint: the weak checkpoint for ``init: weak``; None = the weak model of the run that holds the
            prepared folder (``RunLayout.of_prepared(data).weak.best``) when it exists.
        strong_per_batch: strong slices in every batch (``mixed``).
        val_threshold: probability threshold of the validation Dice.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "strong_per_batch": ">= 0",
        "val_threshold": "(0, 1)",
    }

    model: FPSNetConfig = dataclasses.field(default_factory=lambda: FPSNetConfig(in_channels=0))
    trainer: TrainerConfig = dataclasses.field(
        default_factory=lambda: TrainerConfig(epochs=10, batch_size=8, monitor="dice", monitor_mode="max")
    )
    optim: OptimConfig = dataclasses.field(default_factory=lambda: OptimConfig(lr=1e-3))
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    strong: StrongConfig = dataclasses.field(default_factory=StrongConfig)
    loss: MixedLossConfig = dataclasses.field(default_factory=MixedLossConfig)
    mode: Literal["mixed", "strong_only", "full"] = "mixed"
    init: Literal["weak", "scratch"] = "weak"
    init_checkpoint: str | None = None
    strong_per_batch: int = 2
    val_threshold: float = 0.5


class StrongLabelDataset(SliceDataset):
    """Prepared slices whose masks are the given strong labels only (ground truth never leaks in).

    Args:
        records: training records.
        strong_masks: ``{index: (H, W) uint8}``; other slices have ``has_mask = False``.
        transform, cache, seed: as :class:`wiml.training.data.SliceDataset`.
    """

    def __init__(
        self,
        records,
        strong_masks: dict[int, np.ndarray],
        transform=None,
        cache: bool = True,
        seed: int = 0,
        arrays=None,
    ) -> None:
        super().__init__(records, transform, use_masks=False, cache=cache, seed=seed, arrays=arrays)
        self.strong_masks = dict(strong_masks)

    def _load(self, i: int):
        image, _ = super()._load(i)
        return image, self.strong_masks.get(i)


def dice_val_step(threshold: float = 0.5, gate_with_tag: bool = False):
    """A trainer ``val_step``: per-slice intersection / predicted / true foreground pixel counts and index.

    With ``gate_with_tag`` a slice whose predicted tag probability is < 0.5 predicts no foreground (as
    ``wiml test`` does for models trained with tags).
    """
    from wiml.networks.fpsnet import tag_probability

    def step(model: torch.nn.Module, batch: dict) -> dict[str, np.ndarray]:
        out = model(batch["image"])
        pred = foreground_probability(out.seg) >= threshold
        if gate_with_tag:
            pred = pred & (tag_probability(out.cls) >= 0.5)[:, None, None]
        gt = batch["mask"] > 0
        return {
            "inter": (pred & gt).sum(dim=(1, 2)).cpu().numpy(),
            "pred": pred.sum(dim=(1, 2)).cpu().numpy(),
            "gt": gt.sum(dim=(1, 2)).cpu().numpy(),
            "index": batch["index"].cpu().numpy(),
        }

    return step


def dice_val_metrics(records: list[SliceRecord]):
    """A trainer ``val_metrics``: mean per-patient 3-D Dice (``dice``) and mean positive-slice Dice."""

    def reduce(values: dict[str, np.ndarray]) -> dict[str, float]:
        sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(3))
        slice_dice = []
        for inter, pred, gt, idx in zip(values["inter"], values["pred"], values["gt"], values["index"]):
            sums[records[int(idx)].patient_id] += (inter, pred, gt)
            if gt > 0:
                slice_dice.append(2.0 * inter / (pred + gt))
        patient = [1.0 if p + g == 0 else 2.0 * i / (p + g) for i, p, g in sums.values()]
        return {
            "dice": float(np.mean(patient)) if patient else float("nan"),
            "dice_slice": float(np.mean(slice_dice)) if slice_dice else float("nan"),
        }

    return reduce


def load_strong_labels(
    config: MSLConfig, train_records: list[SliceRecord], data_dir: Path, seed: int
) -> tuple[dict[int, np.ndarray], list[dict]]:
    """The strong labels of a mixed / strong-only run (``{train index: mask}``, WIA recordings)."""
    sc = config.strong
    select_seed = sc.seed if sc.select == "random" else seed
    if sc.source == "wia":
        if not sc.wia_dir:
            raise ConfigError("strong.source=wia needs strong.wia_dir (the WIA result folder)")
        return wia_strong_labels(
            train_records, sc.wia_dir, read_manifest(data_dir), k=sc.k, select=sc.select, seed=select_seed
        )
    if sc.source == "annotations":
        masks, recordings, _tags = annotation_strong_labels(
            train_records, _annotations_dir(sc), read_manifest(data_dir), _prepare_orient(data_dir)
        )
        return masks, recordings
    if sc.k is None:
        raise ConfigError("strong.k must be a number for strong.source=gt (None = every label: wia only)")
    picks = select_strong_slices(train_records, sc.k, sc.select, select_seed)
    return gt_strong_labels(train_records, picks), []


def with_default_init(config: MSLConfig, data_dir: str | Path) -> MSLConfig:
    """``config`` with ``init_checkpoint`` filled in for ``init: weak`` when it is not given: the weak model of
    the run folder that holds ``data_dir`` (``RUN/data`` -> ``RUN/weak/best.safetensors``), if that exists."""
    if config.init != "weak" or config.init_checkpoint:
        return config
    guess = RunLayout.of_prepared(data_dir).weak.best
    if not guess.is_file():
        return config
    logger.info("init_checkpoint not given: using the run's weak model %s", guess)
    return dataclasses.replace(config, init_checkpoint=str(guess))


def _annotations_dir(sc: StrongConfig) -> str:
    if not sc.annotations_dir:
        raise ConfigError(
            "strong.source=annotations needs strong.annotations_dir (the annotator's result folder)"
        )
    return sc.annotations_dir


def _prepare_orient(data_dir: Path) -> str | None:
    """The orientation ``prepare`` gave the volumes of ``data_dir`` (``prepare.json``), LPS when unrecorded."""
    import json

    try:
        meta = json.loads((Path(data_dir) / "prepare.json").read_text(encoding="utf-8"))
        return (meta.get("config") or {}).get("orient", "LPS")
    except (OSError, ValueError):
        return "LPS"


def with_person_tags(config: MSLConfig, records: list[SliceRecord], data_dir: Path) -> list[SliceRecord]:
    """With ``strong.source=annotations``: the training records with the tags the person gave in the annotator
    (``tags/*.csv``, ``tag_source`` ``person``); other sources: unchanged."""
    if config.strong.source != "annotations" or config.mode == "full":
        return records
    _masks, _recs, tags = annotation_strong_labels(
        records, _annotations_dir(config.strong), None, _prepare_orient(data_dir)
    )
    return [
        dataclasses.replace(r, tag=tags[i], tag_source="person") if i in tags else r
        for i, r in enumerate(records)
    ]


def _build_model(config: MSLConfig, records: list[SliceRecord], device) -> tuple[FPSNet, dict]:
    from wiml.networks.checkpoint import load_model
    from wiml.training.weak import infer_in_channels, model_config_for_data

    channels = infer_in_channels(records)
    if config.init == "weak":
        if not config.init_checkpoint:
            raise ConfigError(
                "init=weak needs init_checkpoint (the weak model, e.g. RUN/weak/best.safetensors); "
                "or set init=scratch"
            )
        model, meta = load_model(config.init_checkpoint, device)
        if model.config.in_channels != channels:
            raise InputError(
                f"the weak model takes {model.config.in_channels} channel(s), the slices have {channels}",
                Path(config.init_checkpoint),
            )
        model.train()
        return model, {"init": str(config.init_checkpoint), "init_epoch": meta.get("epoch")}
    cfg = model_config_for_data(config.model, channels, records[0].path)
    return FPSNet(cfg).to(device), {"init": "scratch"}


def train_msl(
    config: MSLConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    stop_after: int | None = None,
    records: tuple[list[SliceRecord], list[SliceRecord]] | None = None,
    strong_labels: tuple[dict[int, np.ndarray], list[dict]] | None = None,
    arrays: dict[Path, tuple[np.ndarray, np.ndarray | None]] | None = None,
) -> dict:
    """Train FPSNet on tags + K strong labels (or a supervised baseline, see ``config.mode``).

    Args:
        config: resolved :class:`MSLConfig`.
        data_dir: prepared folder (``manifest.csv``).
        out_dir: output folder: checkpoints, ``state.pt``, ``log.csv``, ``curves.png``, ``config.yaml``,
            ``strong_labels.json`` (which slices were strong, and how they were made).
        resume: continue from ``out_dir/state.pt``.
        stop_after: stop after this many epochs in total (tests).
        records: ``(train, val)`` records to use instead of the manifest's ``config.data`` splits (e.g. one
            fold of a cross-validation, :mod:`wiml.experiments.curve`).
        strong_labels: ``({index into train: (H, W) uint8 mask}, [interaction records])`` to use instead of
            ``config.strong`` (e.g. masks a robot user made in memory); ignored for ``mode: full``.
        arrays: slices already in memory (``wiml.data.slices.load_slices``), keyed by record path.

    Returns:
        the trainer summary plus ``n_train``, ``n_val``, ``n_strong``, ``strong``, ``init``, ``out_dir``.

    Raises:
        InputError / ConfigError: no training slices, strong labels that cannot be used, a bad init checkpoint.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    config = with_default_init(config, data_dir)
    tc = config.trainer
    dist, device = start_run(tc)
    try:
        if records is not None:
            train_records, val_records = list(records[0]), [r for r in records[1] if r.has_mask]
        else:
            train_records = read_manifest(data_dir, config.data.train_split)
            val_records = [r for r in read_manifest(data_dir, config.data.val_split) if r.has_mask]
        if not train_records:
            raise InputError(f"no slices in split {config.data.train_split!r}", data_dir / "manifest.csv")
        if records is None:
            train_records = with_person_tags(config, train_records, data_dir)
        model, init_info = _build_model(config, train_records, device)
        resolved = dataclasses.replace(config, model=model.config)
        transform = make_augmentation(config.augment)
        if config.mode == "full":
            strong, recordings = {}, []
            train_ds = SliceDataset(train_records, transform, use_masks=True, seed=tc.seed, arrays=arrays)
            strong_idx = list(range(len(train_records)))
        else:
            if strong_labels is not None:
                strong, recordings = dict(strong_labels[0]), list(strong_labels[1])
                if any(not 0 <= i < len(train_records) for i in strong):
                    raise InputError(f"strong label indices must lie in [0, {len(train_records)})")
            else:
                strong, recordings = load_strong_labels(config, train_records, data_dir, tc.seed)
            strong_idx = sorted(strong)
            if config.mode == "strong_only":
                sub = [train_records[i] for i in strong_idx]
                train_ds = StrongLabelDataset(
                    sub,
                    {j: strong[i] for j, i in enumerate(strong_idx)},
                    transform,
                    seed=tc.seed,
                    arrays=arrays,
                )
            else:
                train_ds = StrongLabelDataset(train_records, strong, transform, seed=tc.seed, arrays=arrays)
        loss_cfg = config.loss
        if config.mode != "mixed":
            loss_cfg = dataclasses.replace(loss_cfg, tag_weight=0.0)
        if config.mode == "mixed":
            max_batches = -(-tc.samples_per_epoch // tc.batch_size) if tc.samples_per_epoch else None
            sampler = MixedSampler(
                len(train_ds),
                strong_idx,
                tc.batch_size,
                config.strong_per_batch,
                tc.seed,
                dist.rank,
                dist.world_size,
                max_batches,
            )
        else:
            # supervised baselines: plain shuffled batches; a tiny set (K strong slices) is repeated so that an
            # epoch has at least 8 batches
            per_epoch = tc.samples_per_epoch or max(len(train_ds), tc.batch_size * 8)
            repeats = -(-per_epoch // len(train_ds))
            sampler = MixedSampler(
                len(train_ds) * repeats,
                [],
                tc.batch_size,
                0,
                tc.seed,
                dist.rank,
                dist.world_size,
                max_batches=-(-per_epoch // tc.batch_size),
            )
            sampler = _ModuloSampler(sampler, len(train_ds))
        train_loader = DataLoader(
            train_ds, batch_size=tc.batch_size, sampler=sampler, num_workers=tc.num_workers
        )
        val_loader = None
        if val_records and dist.is_main:
            val_loader = DataLoader(
                SliceDataset(val_records, None, use_masks=True, arrays=arrays),
                batch_size=tc.batch_size,
                shuffle=False,
                num_workers=tc.num_workers,
            )
        elif not val_records:
            logger.warning(
                "no %r slices with masks: no validation, best.safetensors = last epoch", config.data.val_split
            )
        strong_info = {
            "mode": config.mode,
            "source": config.strong.source if config.mode != "full" else "gt-all",
            "slices": [slice_name(train_records[i]) for i in strong_idx] if config.mode != "full" else [],
            "n_strong": len(strong_idx),
            "clicks": [len(r.get("clicks", [])) for r in recordings],
            "annotation_time_s": [r.get("total_time_s") for r in recordings],
        }
        if dist.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            files = TrainingLayout(out_dir)
            save_config(resolved, files.config)
            atomic_write_text(files.strong_labels, json.dumps(strong_info, indent=2))
        size = int(train_ds[0]["image"].shape[-1])
        trainer = Trainer(
            model,
            make_mixed_loss(loss_cfg),
            train_loader,
            out_dir,
            tc,
            config.optim,
            device,
            val_loader=val_loader,
            val_step=dice_val_step(
                config.val_threshold, config.mode == "mixed" and config.loss.tag_weight > 0
            ),
            val_metrics=dice_val_metrics(val_records),
            dist=dist,
            kind=f"msl-{config.mode}",
            run_config={**to_dict(resolved), "data_dir": str(data_dir), "image_size": size, **init_info},
        )
        summary = trainer.fit(resume=resume, stop_after=stop_after)
    finally:
        cleanup(dist)
    summary.update(
        n_train=len(train_records),
        n_val=len(val_records),
        n_strong=len(strong_idx),
        strong=strong_info["slices"],
        out_dir=str(out_dir),
        world_size=dist.world_size,
        **init_info,
    )
    return summary


class _ModuloSampler(torch.utils.data.Sampler):
    """Maps a :class:`MixedSampler` over ``r * length`` virtual items onto a dataset of ``length`` (each item
    appears ``r`` times in the virtual range, so small sets are repeated evenly)."""

    def __init__(self, inner: MixedSampler, length: int) -> None:
        self.inner = inner
        self.length = length

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)

    def __iter__(self):
        return iter([i % self.length for i in self.inner])

    def __len__(self) -> int:
        return len(self.inner)
