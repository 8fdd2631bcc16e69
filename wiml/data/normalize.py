"""Intensity normalisation of CT (Hounsfield window), MR (z-score inside the brain/body) and 8/16-bit slices."""

from __future__ import annotations

import numpy as np

from wiml.errors import InputError


def normalize_ct(volume: np.ndarray, window_hu: tuple[float, float]) -> np.ndarray:
    """Clip HU to ``window_hu`` and scale to [0, 1] (float32)."""
    lo, hi = float(window_hu[0]), float(window_hu[1])
    return ((np.clip(volume.astype(np.float32), lo, hi) - lo) / (hi - lo)).astype(np.float32)


def normalize_zscore(volume: np.ndarray, body: np.ndarray | None = None) -> np.ndarray:
    """Z-score inside ``body`` (bool, same shape; default: non-zero voxels); outside set to 0 (float32).

    Raises:
        InputError: an empty body mask.
    """
    volume = volume.astype(np.float32)
    body = volume != 0 if body is None else body.astype(bool)
    if not body.any():
        raise InputError("z-score: the brain/body mask is empty")
    values = volume[body]
    mean, std = float(values.mean()), float(values.std())
    out = np.zeros_like(volume)
    out[body] = (values - mean) / (std if std > 1e-6 else 1.0)
    return out


def normalize_unit(array: np.ndarray) -> np.ndarray:
    """Integer grey values / dtype maximum (uint8: / 255) -> [0, 1]; float arrays are returned as float32."""
    if np.issubdtype(array.dtype, np.integer):
        return (array.astype(np.float32) / float(np.iinfo(array.dtype).max)).astype(np.float32)
    return array.astype(np.float32)
