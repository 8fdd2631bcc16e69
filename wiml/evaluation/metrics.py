"""Segmentation metrics on binary masks.

Empty-mask convention (used everywhere in WIML):
    * prediction and ground truth both empty: Dice = IoU = 1.0 (a correct "nothing here").
    * exactly one empty: Dice = IoU = 0.0.
"""

from __future__ import annotations

import numpy as np


def _binary(a: np.ndarray) -> np.ndarray:
    return np.asarray(a) > 0


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
    p, g = _binary(pred), _binary(gt)
    if p.shape != g.shape:
        raise ValueError(f"shape mismatch: prediction {p.shape} vs ground truth {g.shape}")
    denom = int(p.sum()) + int(g.sum())
    if denom == 0:
        return 1.0
    return 2.0 * int(np.logical_and(p, g).sum()) / denom


def iou_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union |P∩G| / |P∪G|; 1.0 when both are empty. Raises ValueError on shape mismatch."""
    p, g = _binary(pred), _binary(gt)
    if p.shape != g.shape:
        raise ValueError(f"shape mismatch: prediction {p.shape} vs ground truth {g.shape}")
    union = int(np.logical_or(p, g).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(p, g).sum()) / union
