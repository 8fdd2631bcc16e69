"""Mask post-processing: largest connected component, morphological opening/closing, hole filling."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _disk(radius_px: int) -> np.ndarray:
    r = int(radius_px)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy * yy + xx * xx) <= r * r


def largest_component(mask: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Keep the largest 8-connected foreground component (and every component touching ``keep``).

    Args:
        mask: (H, W) binary mask.
        keep: optional (H, W) binary mask (e.g. foreground clicks); components overlapping it are kept too.

    Returns:
        (H, W) uint8 in {0, 1}; all zeros for an empty input.
    """
    mask = np.asarray(mask) > 0
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask.astype(np.uint8)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    chosen = {int(sizes.argmax())}
    if keep is not None:
        chosen |= {int(v) for v in np.unique(labels[np.asarray(keep) > 0]) if v > 0}
    return np.isin(labels, list(chosen)).astype(np.uint8)


def postprocess_mask(
    mask: np.ndarray,
    largest: bool = True,
    open_radius_px: int = 1,
    close_radius_px: int = 1,
    fill_holes: bool = True,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """Clean a binary mask: opening, closing, hole filling, then the largest connected component.

    Args:
        mask: (H, W) binary mask.
        largest: keep only the largest component (plus those overlapping ``keep``).
        open_radius_px: disk radius of the opening (0 = none); removes specks and thin bridges.
        close_radius_px: disk radius of the closing (0 = none); closes small gaps.
        fill_holes: fill enclosed background holes.
        keep: optional (H, W) mask of pixels that must stay foreground (e.g. foreground clicks).

    Returns:
        (H, W) uint8 in {0, 1}.
    """
    out = np.asarray(mask) > 0
    if open_radius_px > 0:
        opened = ndimage.binary_opening(out, structure=_disk(open_radius_px))
        out = opened if opened.any() else out  # never erase a small but real object entirely
    if close_radius_px > 0:
        r = int(close_radius_px)
        padded = np.pad(out, r)
        out = ndimage.binary_closing(padded, structure=_disk(r))[r:-r, r:-r]
    if fill_holes:
        out = ndimage.binary_fill_holes(out)
    if keep is not None:
        out = out | (np.asarray(keep) > 0)
    if largest:
        out = largest_component(out, keep=keep) > 0
    return out.astype(np.uint8)
