"""Segmentation metrics on binary masks: overlap (Dice, IoU, precision, recall) and surface (HD95, ASD).

Empty-mask convention (used everywhere in WIML):
    * Overlap metrics (Dice, IoU, precision, recall):
        - prediction and ground truth both empty: 1.0 (a correct "nothing here");
        - exactly one of them empty: 0.0.
    * Surface metrics (HD95, ASD, in mm):
        - both empty: 0.0 mm (no surface to miss);
        - exactly one empty: NaN (undefined: there is no surface to measure a distance to). Such values are
          left out of means by :func:`summarize`, which reports how many values it averaged (``n``); the
          error itself is already counted by Dice = 0.

Surface distances are computed with MONAI (``compute_hausdorff_distance`` /
``compute_average_surface_distance``, Euclidean, symmetric) with the voxel spacing in mm, so anisotropic
grids are measured correctly; without a spacing they are in pixels.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

#: Names of the per-case metrics, in the order tables show them.
METRIC_NAMES = ("dice", "iou", "precision", "recall", "hd95_mm", "asd_mm")


def _binary(a: np.ndarray) -> np.ndarray:
    return np.asarray(a) > 0


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, g = _binary(pred), _binary(gt)
    if p.shape != g.shape:
        raise ValueError(f"shape mismatch: prediction {p.shape} vs ground truth {g.shape}")
    return p, g


def dice_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice similarity coefficient 2|P∩G| / (|P| + |G|) of two binary masks of the same shape.

    Args:
        pred: (H, W) or (D, H, W) mask, non-zero = foreground.
        gt: same shape.

    Returns:
        Dice in [0, 1]; 1.0 when both are empty.

    Raises:
        ValueError: shapes differ.
    """
    p, g = _pair(pred, gt)
    denom = int(p.sum()) + int(g.sum())
    if denom == 0:
        return 1.0
    return 2.0 * int(np.logical_and(p, g).sum()) / denom


def iou_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union |P∩G| / |P∪G|; 1.0 when both are empty. Raises ValueError on shape mismatch."""
    p, g = _pair(pred, gt)
    union = int(np.logical_or(p, g).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(p, g).sum()) / union


def precision_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """Precision |P∩G| / |P|: 1.0 when both are empty, 0.0 when only one is. Raises ValueError on shape mismatch."""
    p, g = _pair(pred, gt)
    n_p, n_g = int(p.sum()), int(g.sum())
    if n_p == 0:
        return 1.0 if n_g == 0 else 0.0
    return int(np.logical_and(p, g).sum()) / n_p


def recall_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """Recall (sensitivity) |P∩G| / |G|: 1.0 when both are empty, 0.0 when only one is."""
    p, g = _pair(pred, gt)
    n_p, n_g = int(p.sum()), int(g.sum())
    if n_g == 0:
        return 1.0 if n_p == 0 else 0.0
    return int(np.logical_and(p, g).sum()) / n_g


def _surface(kind: str, pred: np.ndarray, gt: np.ndarray, spacing_mm: Sequence[float] | None) -> float:
    p, g = _pair(pred, gt)
    if p.ndim not in (2, 3):
        raise ValueError(f"surface metrics need a 2-D or 3-D mask, got shape {p.shape}")
    if spacing_mm is not None:
        spacing_mm = tuple(float(s) for s in spacing_mm)
        if len(spacing_mm) != p.ndim or min(spacing_mm) <= 0:
            raise ValueError(
                f"spacing_mm {spacing_mm} must give one positive value per axis of shape {p.shape}"
            )
    has_p, has_g = bool(p.any()), bool(g.any())
    if not has_p and not has_g:
        return 0.0
    if has_p != has_g:
        return math.nan
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    tp = torch.from_numpy(p[None, None])
    tg = torch.from_numpy(g[None, None])
    with warnings.catch_warnings():  # MONAI's deprecation notices inside get_mask_edges
        warnings.simplefilter("ignore")
        if kind == "hd95":
            out = compute_hausdorff_distance(
                tp, tg, include_background=True, percentile=95, spacing=spacing_mm
            )
        else:
            out = compute_average_surface_distance(
                tp, tg, include_background=True, symmetric=True, spacing=spacing_mm
            )
    return float(out.reshape(-1)[0])


def hd95_mm(pred: np.ndarray, gt: np.ndarray, spacing_mm: Sequence[float] | None = None) -> float:
    """95th-percentile symmetric Hausdorff distance between the mask surfaces (MONAI).

    Args:
        pred: (H, W) or (D, H, W) binary mask.
        gt: same shape.
        spacing_mm: voxel spacing per array axis, e.g. (row, col) for a slice or (slice, row, col) for a
            stack, in mm; None = 1 per axis (result in px).

    Returns:
        HD95 in mm (px without spacing); 0.0 when both masks are empty, NaN when exactly one is.

    Raises:
        ValueError: shapes differ, the masks are not 2-D/3-D, or the spacing does not fit.
    """
    return _surface("hd95", pred, gt, spacing_mm)


def asd_mm(pred: np.ndarray, gt: np.ndarray, spacing_mm: Sequence[float] | None = None) -> float:
    """Average symmetric surface distance (MONAI); same arguments, units and empty cases as :func:`hd95_mm`."""
    return _surface("asd", pred, gt, spacing_mm)


def segmentation_metrics(
    pred: np.ndarray, gt: np.ndarray, spacing_mm: Sequence[float] | None = None
) -> dict[str, float]:
    """All of :data:`METRIC_NAMES` for one case (a slice or a volume).

    Args:
        pred: (H, W) or (D, H, W) binary mask.
        gt: same shape.
        spacing_mm: per-axis spacing in mm (see :func:`hd95_mm`).

    Returns:
        ``{"dice", "iou", "precision", "recall", "hd95_mm", "asd_mm"}`` as floats.
    """
    return {
        "dice": dice_score(pred, gt),
        "iou": iou_score(pred, gt),
        "precision": precision_score(pred, gt),
        "recall": recall_score(pred, gt),
        "hd95_mm": hd95_mm(pred, gt, spacing_mm),
        "asd_mm": asd_mm(pred, gt, spacing_mm),
    }


def volume_metrics(
    preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], spacing_mm: Sequence[float] | None = None
) -> dict[str, float]:
    """Per-patient 3-D metrics: the slices are stacked along a new first axis with their spacing.

    Args:
        preds: the patient's predicted slices, each (H, W), in slice order.
        gts: the ground-truth slices, same count and shapes.
        spacing_mm: (row, col, slice) spacing in mm of the slice grid (the manifest's ``spacing_mm``);
            None = 1 px per axis.

    Returns:
        :func:`segmentation_metrics` of the (D, H, W) stacks, surface distances using spacing
        (slice, row, col).

    Raises:
        ValueError: no slices, or counts / shapes differ.
    """
    if len(preds) == 0 or len(preds) != len(gts):
        raise ValueError(
            f"need the same non-zero number of slices, got {len(preds)} predictions and {len(gts)} "
            "ground-truth masks"
        )
    p = np.stack([_binary(x) for x in preds])
    g = np.stack([_binary(x) for x in gts])
    spacing_3d = None
    if spacing_mm is not None:
        row, col, sl = (float(s) for s in spacing_mm)
        spacing_3d = (sl, row, col)
    return segmentation_metrics(p, g, spacing_3d)


def summarize(
    rows: Iterable[Mapping[str, float]], names: Sequence[str] = METRIC_NAMES
) -> dict[str, dict[str, float]]:
    """Mean, standard deviation (population, ddof=0) and count of each metric, NaN values left out.

    Args:
        rows: per-case metric dicts.
        names: the metrics to summarise.

    Returns:
        ``{name: {"mean", "std", "n"}}``; mean and std are NaN when no finite value exists.
    """
    rows = list(rows)
    out = {}
    for name in names:
        vals = np.array([float(r[name]) for r in rows if name in r], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        if vals.size:
            out[name] = {"mean": float(vals.mean()), "std": float(vals.std()), "n": int(vals.size)}
        else:
            out[name] = {"mean": math.nan, "std": math.nan, "n": 0}
    return out


def format_mean_std(stats: Mapping[str, float], digits: int = 3) -> str:
    """``{"mean", "std", "n"}`` -> ``"0.812 ± 0.041"`` (``"n/a"`` when there is no value)."""
    if not stats or stats.get("n", 0) == 0 or not math.isfinite(stats["mean"]):
        return "n/a"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"
