"""Binary graph cut (max-flow) with a contrast-sensitive pairwise term, via SimpleCRF.

The energy is the one of Boykov & Jolly (ICCV 2001), "Interactive graph cuts for optimal boundary & region
segmentation of objects in N-D images": unary terms -log p from the foreground/background probabilities and a
pairwise term ``lam * exp(-(I_p - I_q)^2 / (2 sigma^2)) / dist(p, q)`` between 8-neighbours. Seeds are hard
constraints. SimpleCRF (Wang et al., HiLab) implements it with the Boykov-Kolmogorov max-flow.
"""

from __future__ import annotations

import numpy as np

from wiml.errors import InputError

_EPS = 1e-4


def _check_2d(name: str, arr: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D (H, W) array, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise InputError(f"{name} shape {arr.shape} does not match the image {shape}")
    return arr


def graph_cut(
    image: np.ndarray,
    fg_prob: np.ndarray,
    lam: float = 5.0,
    sigma: float = 0.1,
    fg_seeds: np.ndarray | None = None,
    bg_seeds: np.ndarray | None = None,
) -> np.ndarray:
    """Segment ``image`` by max-flow / min-cut.

    Args:
        image: (H, W) float, intensities normalised to about [0, 1] (``sigma`` is in those units).
        fg_prob: (H, W) foreground probability in [0, 1]; background probability is ``1 - fg_prob``.
        lam: weight of the pairwise (smoothness) term. 5.0 in the original WIML release.
        sigma: intensity scale of the contrast-sensitive pairwise term. 0.1 in the original release.
        fg_seeds: optional (H, W) bool/uint8, pixels forced to foreground (hard constraints).
        bg_seeds: optional (H, W) bool/uint8, pixels forced to background.

    Returns:
        (H, W) uint8 mask in {0, 1}.

    Raises:
        InputError: shapes are not 2-D or do not match, values are not finite, or lam/sigma are not positive.
    """
    image = _check_2d("image", image).astype(np.float32, copy=False)
    shape = image.shape
    fg_prob = _check_2d("fg_prob", fg_prob, shape).astype(np.float32)
    if not (np.isfinite(image).all() and np.isfinite(fg_prob).all()):
        raise InputError("image and fg_prob must be finite (found NaN or inf)")
    if lam < 0 or sigma <= 0:
        raise InputError(f"need lam >= 0 and sigma > 0, got lam={lam}, sigma={sigma}")
    import maxflow  # SimpleCRF's max-flow extension

    fg = np.clip(fg_prob, _EPS, 1.0 - _EPS)
    prob = np.ascontiguousarray(np.stack([1.0 - fg, fg], axis=-1), dtype=np.float32)
    img = np.ascontiguousarray(image)
    if fg_seeds is None and bg_seeds is None:
        out = maxflow.maxflow2d(img, prob, (float(lam), float(sigma)))
    else:
        seeds = np.zeros(shape + (2,), np.uint8)
        if bg_seeds is not None:
            seeds[..., 0] = _check_2d("bg_seeds", bg_seeds, shape) > 0
        if fg_seeds is not None:
            seeds[..., 1] = _check_2d("fg_seeds", fg_seeds, shape) > 0
            seeds[..., 0][seeds[..., 1] > 0] = 0  # a pixel clicked as both: the foreground click wins
        out = maxflow.interactive_maxflow2d(
            img, prob, np.ascontiguousarray(seeds), (float(lam), float(sigma))
        )
    return (np.asarray(out) > 0).astype(np.uint8)
