"""CAM quality of a weak checkpoint on prepared slices (what ``wiml cam`` writes).

For every slice of a split: Grad-CAM, the initial mask (graph cut + post-processing), the tag probability.
On tag-positive slices with a ground-truth mask: Dice and IoU of ``CAM >= tau`` for a sweep of tau and of the
initial mask. On tag-negative slices: the false-positive rate (fraction of slices with any predicted
foreground) and the mean fraction of pixels marked foreground. ``initial_mask_gated`` empties the initial
mask where the classifier says "absent" (tag probability < ``gate``), as a tool would before proposing it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from wiml.cam import body_mask, cam_to_initial_mask, compute_grad_cam, graph_cut_image, restrict_cam
from wiml.data.slices import SliceRecord, load_slice, read_manifest
from wiml.evaluation.metrics import dice_score, iou_score
from wiml.interactive.session import RefinementConfig
from wiml.layout import CONFIG_YAML, summary_json
from wiml.networks.fpsnet import tag_probability
from wiml.utils import atomic_path, atomic_write_csv, atomic_write_text, enlarge_nearest, staged_output

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class CamConfig:
    """Settings of ``wiml cam``.

    Attributes:
        split: manifest split to evaluate.
        layer: Grad-CAM layer ("" = the model's default).
        taus: CAM thresholds of the sweep.
        gate: tag-probability threshold of the gated initial mask.
        restrict_to_body: zero the CAM outside the body / brain (``wiml.cam.body_mask``) before use.
        refinement: the refinement parameters the initial masks are made with (the one graph-cut parameter set
            ``refinement.lam`` / ``refinement.sigma``; ``refinement.cam_appearance`` and
            ``refinement.appearance`` for the appearance-aware prior), the same as the annotator's and
            ``wiml wia-sim``'s.
        batch_size: slices per Grad-CAM batch.
        overlays: write overlay PNGs.
        max_overlays: at most this many overlays (0 = all).
    """

    RANGES: ClassVar[dict[str, str]] = {
        "taus": "(0, 1)",
        "gate": "[0, 1]",
        "batch_size": ">= 1",
        "max_overlays": ">= 0",
    }

    split: str = "test"
    layer: str = ""
    taus: list[float] = dataclasses.field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    gate: float = 0.5
    restrict_to_body: bool = True
    refinement: RefinementConfig = dataclasses.field(default_factory=RefinementConfig)
    batch_size: int = 16
    overlays: bool = True
    max_overlays: int = 0


def slice_name(record: SliceRecord) -> str:
    """``<patient_id>_<slice_index:04d>`` (docs/architecture.md)."""
    return f"{record.patient_id}_{record.slice_index:04d}"


def overlay_rgb(
    image: np.ndarray,
    cam: np.ndarray,
    mask: np.ndarray | None = None,
    gt: np.ndarray | None = None,
    alpha: float = 0.4,
) -> np.ndarray:
    """(H, W, 3) uint8: grey image blended with the CAM (jet), initial-mask outline green, ground truth blue
    (:mod:`wiml.colors`).

    Args:
        image: (H, W) float in [0, 1].
        cam: (H, W) float in [0, 1].
        mask: optional (H, W) initial mask.
        gt: optional (H, W) ground truth.
        alpha: weight of the CAM colour.
    """
    from matplotlib import colormaps
    from scipy import ndimage

    from wiml.colors import CAM_COLORMAP, MASK_RGB, REFERENCE_RGB, unit_rgb

    grey = np.repeat(np.clip(image, 0, 1)[..., None], 3, axis=-1)
    heat = colormaps[CAM_COLORMAP](np.clip(cam, 0, 1))[..., :3]
    rgb = (1 - alpha) * grey + alpha * heat
    for m, colour in ((gt, unit_rgb(REFERENCE_RGB)), (mask, unit_rgb(MASK_RGB))):
        if m is not None and np.any(m):
            m = np.asarray(m) > 0
            edge = m & ~ndimage.binary_erosion(m)
            rgb[edge] = colour
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def write_png_rgb(path: Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 array as PNG, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(rgb, mode="RGB").save(tmp, format="PNG")


def _summarise(
    method: str, tau: float | None, preds: list[np.ndarray], gts: list[np.ndarray], tags: np.ndarray
) -> dict:
    pos = [i for i, t in enumerate(tags) if t == 1 and gts[i] is not None]
    neg = [i for i, t in enumerate(tags) if t == 0]
    dice = [dice_score(preds[i], gts[i]) for i in pos]
    iou = [iou_score(preds[i], gts[i]) for i in pos]
    nan = float("nan")
    return {
        "method": method,
        "tau": "" if tau is None else tau,
        "n_positive": len(pos),
        "dice_mean": float(np.mean(dice)) if dice else nan,
        "dice_median": float(np.median(dice)) if dice else nan,
        "iou_mean": float(np.mean(iou)) if iou else nan,
        "n_negative": len(neg),
        "fpr_slices": float(np.mean([preds[i].any() for i in neg])) if neg else nan,
        "fp_pixel_fraction": float(np.mean([preds[i].mean() for i in neg])) if neg else nan,
    }


def evaluate_cams(
    model: torch.nn.Module,
    records: list[SliceRecord],
    out_dir: str | Path,
    config: CamConfig,
    device: torch.device,
) -> dict:
    """Grad-CAM, initial masks and CAM quality for ``records``; writes ``out_dir``.

    Writes ``cams/<name>.png`` (CAM x 255), ``initial_masks/<name>.png`` (0/255), ``overlays/<name>.png``,
    ``cam_slices.csv`` (per slice), ``cam_quality.csv`` (per method / tau) and ``summary.json``.

    Args:
        model: FPSNet in eval mode on ``device``.
        records: prepared slices (all must share one size).
        out_dir: output folder.
        config: ``CamConfig``.
        device: where the model runs.

    Returns:
        The summary dict (classification metrics, initial-mask Dice, best tau, FPR, counts).
    """
    from tqdm import tqdm

    from wiml.data.io import write_slice
    from wiml.training.weak import tag_metrics

    out_dir = Path(out_dir)
    for sub in ("cams", "initial_masks") + (("overlays",) if config.overlays else ()):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    taus = [float(t) for t in config.taus]
    per_slice: list[dict] = []
    cam_masks: dict[float, list[np.ndarray]] = {t: [] for t in taus}
    initial, gated, gts, tags, probs = [], [], [], [], []
    n_overlays = 0
    bs = max(1, config.batch_size)
    for start in tqdm(range(0, len(records), bs), desc="cam", leave=False, disable=None):
        chunk = records[start : start + bs]
        loaded = [load_slice(r) for r in chunk]
        images = torch.from_numpy(np.stack([im for im, _ in loaded])).to(device)
        cams, out = compute_grad_cam(model, images, config.layer or None)
        prob = tag_probability(out.cls).cpu().numpy()
        for rec, (image, gt), cam, p in zip(chunk, loaded, cams, prob):
            name = slice_name(rec)
            gc_image = graph_cut_image(image)
            if config.restrict_to_body:
                cam = restrict_cam(cam, body_mask(image))
            mask = cam_to_initial_mask(gc_image, cam, config.refinement)
            mask_gated = mask if p >= config.gate else np.zeros_like(mask)
            write_slice(out_dir / "cams" / f"{name}.png", (cam * 255).round().astype(np.uint8))
            write_slice(out_dir / "initial_masks" / f"{name}.png", mask * np.uint8(255))
            if config.overlays and (config.max_overlays <= 0 or n_overlays < config.max_overlays):
                write_png_rgb(
                    out_dir / "overlays" / f"{name}.png",
                    enlarge_nearest(overlay_rgb(gc_image, cam, mask, gt)),
                )
                n_overlays += 1
            row = {
                "name": name,
                "patient_id": rec.patient_id,
                "slice_index": rec.slice_index,
                "tag": rec.tag,
                "tag_prob": float(p),
                "cam_max_region_px": int((cam >= 0.5).sum()),
                "initial_mask_px": int(mask.sum()),
                "gt_px": int(gt.sum()) if gt is not None else "",
            }
            for t in taus:
                cam_masks[t].append((cam >= t).astype(np.uint8))
            if gt is not None:
                row["initial_dice"] = dice_score(mask, gt)
                row["initial_iou"] = iou_score(mask, gt)
                row["cam_dice_best_tau"] = max(dice_score(cam_masks[t][-1], gt) for t in taus) if taus else ""
            per_slice.append(row)
            initial.append(mask)
            gated.append(mask_gated)
            gts.append(gt)
            tags.append(rec.tag)
            probs.append(float(p))
    tags_arr = np.array(tags)
    quality = [_summarise("cam", t, cam_masks[t], gts, tags_arr) for t in taus]
    quality.append(_summarise("initial_mask", None, initial, gts, tags_arr))
    quality.append(_summarise("initial_mask_gated", None, gated, gts, tags_arr))
    atomic_write_csv(out_dir / "cam_slices.csv", per_slice, list(per_slice[0]) if per_slice else [], ".6g")
    atomic_write_csv(out_dir / "cam_quality.csv", quality, list(quality[0]) if quality else [], ".6g")
    cls = tag_metrics(np.array(probs), tags_arr)
    cam_rows = [q for q in quality if q["method"] == "cam" and np.isfinite(q["dice_mean"])]
    best_cam = max(cam_rows, key=lambda q: q["dice_mean"]) if cam_rows else None
    init, init_g = quality[-2], quality[-1]
    summary = {
        "n_slices": len(records),
        "n_positive_with_mask": init["n_positive"],
        "n_negative": init["n_negative"],
        "classification": cls,
        "initial_mask_dice": init["dice_mean"],
        "initial_mask_iou": init["iou_mean"],
        "initial_mask_fpr_slices": init["fpr_slices"],
        "gated_initial_mask_dice": init_g["dice_mean"],
        "gated_initial_mask_fpr_slices": init_g["fpr_slices"],
        "best_cam_tau": best_cam["tau"] if best_cam else None,
        "best_cam_dice": best_cam["dice_mean"] if best_cam else None,
        "config": dataclasses.asdict(config),
    }
    atomic_write_text(summary_json(out_dir), json.dumps(summary, indent=2, default=float))
    return summary


def run_cam(
    checkpoint: str | Path, data_dir: str | Path, out_dir: str | Path, config: CamConfig, device: str = "auto"
) -> dict:
    """Load a weak checkpoint and :func:`evaluate_cams` on ``data_dir``'s ``config.split``.

    Raises:
        CheckpointError: the checkpoint cannot be loaded.
        InputError: the split has no slices.
        OutputError: ``out_dir`` cannot be written (a failure leaves it as it was).
    """
    from wiml.config import save_config
    from wiml.errors import InputError
    from wiml.networks.checkpoint import load_model
    from wiml.utils import resolve_device

    dev = resolve_device(device)
    model, meta = load_model(checkpoint, dev)
    records = read_manifest(data_dir, config.split)
    if not records:
        raise InputError(f"no slices in split {config.split!r}", Path(data_dir) / "manifest.csv")
    # written into a staging folder and moved into place when complete (summary.json last)
    with staged_output(Path(out_dir), last=(summary_json(out_dir).name,)) as stage:
        save_config(config, stage / CONFIG_YAML)
        summary = evaluate_cams(model, records, stage, config, dev)
        summary.update(checkpoint=str(checkpoint), data=str(data_dir), split=config.split)
        atomic_write_text(summary_json(stage), json.dumps(summary, indent=2, default=float))
    return summary
