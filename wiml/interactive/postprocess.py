"""Mask post-processing (largest component, opening/closing, hole filling) and the body / brain region."""

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


def body_mask(image: np.ndarray, close_radius_px: int = 2) -> np.ndarray:
    """The body (or brain) region of a prepared slice: pixels that differ from the background value.

    The background value of each channel is the median of its border pixels (air in CT windowed to [0, 255]
    HU, the zero outside the brain in z-scored MR). The region is closed, its holes filled, and only the
    largest component kept. Used to keep Grad-CAM off the background, where large receptive fields can put
    tumour evidence next to the head instead of on the lesion.

    Args:
        image: (C, H, W) or (H, W) prepared slice.
        close_radius_px: radius of the closing before hole filling.

    Returns:
        (H, W) bool; all True where no foreground is found (nothing is masked then).
    """
    arr = np.asarray(image, dtype=np.float32)
    arr = arr[None] if arr.ndim == 2 else arr
    fg = np.zeros(arr.shape[1:], bool)
    for ch in arr:
        border = np.concatenate([ch[0], ch[-1], ch[:, 0], ch[:, -1]])
        tol = 1e-3 * (float(ch.std()) + 1e-6)
        fg |= np.abs(ch - float(np.median(border))) > tol
    if not fg.any():
        return np.ones(fg.shape, bool)
    return (
        postprocess_mask(fg, largest=True, open_radius_px=0, close_radius_px=close_radius_px, fill_holes=True)
        > 0
    )
