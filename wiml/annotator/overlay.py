"""Qt-free drawing helpers: windowing to 8-bit, mask contours, CAM colouring."""

from __future__ import annotations

import numpy as np

#: CT window presets (level, width) in HU.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "Abdomen / liver (40, 400)": (40.0, 400.0),
    "Liver narrow (60, 160)": (60.0, 160.0),
    "Lung (-600, 1500)": (-600.0, 1500.0),
    "Bone (400, 1800)": (400.0, 1800.0),
    "Brain (40, 80)": (40.0, 80.0),
}


#: percentile windows offered for MR and 8-bit images: name -> (low, high) percentile of the image's values.
PERCENTILE_PRESETS: dict[str, tuple[float, float]] = {
    "Full range (0.5-99.5 %)": (0.5, 99.5),
    "Contrast (1-99 %)": (1.0, 99.0),
    "Narrow (5-95 %)": (5.0, 95.0),
}


def window_presets(percentiles: dict[float, float] | None, is_ct: bool) -> dict[str, tuple[float, float]]:
    """Window presets (name -> (level, width)) for an image: the CT presets in HU for CT, else windows from the
    image's own percentiles (MR has no fixed units; 8-bit images may use a narrow part of 0-255).

    Args:
        percentiles: {percentile: value} of the image (keys 0.5, 1, 5, 95, 99, 99.5), or None.
        is_ct: whether the values are HU.
    """
    if is_ct:
        return dict(CT_PRESETS)
    if not percentiles:
        return {}
    out = {}
    for name, (lo_q, hi_q) in PERCENTILE_PRESETS.items():
        lo, hi = float(percentiles[lo_q]), float(percentiles[hi_q])
        if hi > lo:
            out[name] = ((lo + hi) / 2.0, hi - lo)
    return out


def window_to_uint8(raw: np.ndarray, level: float, width: float) -> np.ndarray:
    """(H, W) values -> (H, W) uint8 through a (level, width) window (source units, e.g. HU)."""
    width = max(float(width), 1e-6)
    lo = float(level) - width / 2.0
    out = np.clip((np.asarray(raw, np.float32) - lo) * (255.0 / width), 0.0, 255.0)
    return np.ascontiguousarray(np.round(out).astype(np.uint8))


def mask_contours(mask: np.ndarray) -> list[np.ndarray]:
    """Outlines of a binary mask as closed polylines in image coordinates.

    Args:
        mask: (H, W) binary mask.

    Returns:
        list of (N, 2) float arrays of (x, y) = (col, row) points on pixel edges (pixel (r, c) covers
        [c, c + 1) x [r, r + 1)), one per boundary, closed (first point repeated last).
    """
    from skimage.measure import find_contours

    m = np.pad(np.asarray(mask) > 0, 1).astype(np.float32)
    if not m.any():
        return []
    out = []
    for c in find_contours(m, 0.5):
        # padded index -> pixel index (-1); pixel centre -> scene coordinate (+0.5)
        xy = np.stack([c[:, 1] - 0.5, c[:, 0] - 0.5], axis=1)
        out.append(xy)
    return out


def mask_rgba(mask: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """(H, W) mask -> (H, W, 4) uint8 RGBA, colour ``rgb`` where the mask is set, transparent elsewhere."""
    m = np.asarray(mask) > 0
    out = np.zeros(m.shape + (4,), np.uint8)
    out[m, 0], out[m, 1], out[m, 2], out[m, 3] = rgb[0], rgb[1], rgb[2], 255
    return out


def cam_rgba(cam: np.ndarray) -> np.ndarray:
    """(H, W) CAM in [0, 1] -> (H, W, 4) uint8 RGBA heat map (matplotlib ``jet``); alpha 0 below 0.1, 255 at 1."""
    from matplotlib import colormaps

    from wiml.colors import CAM_COLORMAP

    cam = np.clip(np.asarray(cam, np.float32), 0.0, 1.0)
    rgba = (colormaps[CAM_COLORMAP](cam) * 255.0).astype(np.uint8)
    rgba[..., 3] = np.round(np.clip((cam - 0.1) / 0.9, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(rgba)
