"""Geodesic distance maps from click seeds and the click likelihoods derived from them.

The geodesic distance of a pixel to a seed set is the smallest integral of the image gradient magnitude
along any path to a seed (Criminisi, Sharp & Blake, "GeoS: Geodesic image segmentation", ECCV 2008).
With the weight ``lamb = 1`` the spatial term vanishes, so the distance measures how much the intensity
changes on the way to the nearest click: a homogeneous organ around a click is "near" as a whole. This is
the distance the original WIML release computes (GeodisTK fast marching on the standardised image).

Two backends:
    * ``fastgeodis`` (default): FastGeodis' Toivanen raster scan (Asad et al., "FastGeodis: Fast
      generalised geodesic distance transform", JOSS 2022); about 60x faster than fast marching on CPU and
      within about 0.3 intensity standard deviations of it.
    * ``geodistk``: GeodisTK fast marching (Wang et al., "DeepIGeoS", IEEE TPAMI 2019), the original's way.
"""

from __future__ import annotations

import numpy as np

from wiml.errors import InputError

BACKENDS = ("fastgeodis", "geodistk")

#: distance returned for every pixel when there is no seed at all (exp(-d^2) underflows to 0).
NO_SEED_DISTANCE = 1e6


def _check(image: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    seeds = np.asarray(seeds)
    if image.ndim not in (2, 3):
        raise InputError(f"image must be a 2-D (H, W) or (C, H, W) array, got shape {image.shape}")
    if seeds.shape != image.shape[-2:]:
        raise InputError(f"seeds shape {seeds.shape} does not match the image {image.shape}")
    return np.ascontiguousarray(image, dtype=np.float32), seeds > 0


def geodesic_distance(
    image: np.ndarray, seeds: np.ndarray, backend: str = "fastgeodis", lamb: float = 1.0, iterations: int = 2
) -> np.ndarray:
    """Geodesic distance of every pixel to the nearest seed pixel.

    Args:
        image: (H, W) float, usually standardised (zero mean, unit variance), so that distances are in units
            of the image's intensity standard deviation; or (C, H, W) for several channels (``fastgeodis``
            only: the local intensity change is the Euclidean norm over the channels).
        seeds: (H, W) bool/uint8, non-zero at the seed pixels (e.g. click disks).
        backend: ``"fastgeodis"`` (Toivanen raster scan, default) or ``"geodistk"`` (fast marching).
        lamb: weight of the intensity term in [0, 1] for ``fastgeodis`` (0 = Euclidean, 1 = pure geodesic).
            GeodisTK's fast marching is always pure geodesic (``lamb`` must be 1 there).
        iterations: raster-scan passes for ``fastgeodis``.

    Returns:
        (H, W) float32 distances, 0 on the seeds; :data:`NO_SEED_DISTANCE` everywhere when there is no seed.

    Raises:
        InputError: shapes do not match, the backend is unknown, or ``lamb`` is out of range.
    """
    image, seeds = _check(image, seeds)
    if backend not in BACKENDS:
        raise InputError(f"unknown geodesic backend {backend!r}; expected one of {BACKENDS}")
    if not 0.0 <= lamb <= 1.0:
        raise InputError(f"lamb must be in [0, 1], got {lamb}")
    if not seeds.any():
        return np.full(image.shape[-2:], NO_SEED_DISTANCE, np.float32)
    if backend == "geodistk":
        if image.ndim == 3:
            raise InputError("the geodistk backend supports one channel only; use fastgeodis")
        if lamb != 1.0:
            raise InputError("the geodistk backend (fast marching) supports only lamb=1.0")
        import GeodisTK

        return np.asarray(GeodisTK.geodesic2d_fast_marching(image, seeds.astype(np.uint8)), dtype=np.float32)
    import FastGeodis
    import torch

    img_t = torch.from_numpy(image)[None] if image.ndim == 3 else torch.from_numpy(image)[None, None]
    # FastGeodis takes a soft mask that is 0 on the seeds and 1 elsewhere; v scales the initial distances.
    mask_t = torch.from_numpy((~seeds).astype(np.float32))[None, None]
    with torch.no_grad():
        dist = FastGeodis.generalised_geodesic2d_toivanen(img_t, mask_t, 1e10, float(lamb), int(iterations))
    return dist[0, 0].numpy().astype(np.float32, copy=False)


def click_likelihood(distance: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Click likelihood ``exp(-(d / scale)^2)`` from a geodesic distance map.

    Args:
        distance: (H, W) geodesic distances (in intensity standard deviations for a standardised image).
        scale: distance at which the likelihood drops to 1/e (default 1.0, the original's ``exp(-d^2)``).

    Returns:
        (H, W) float32 in [0, 1]: 1 on the seeds, near 0 beyond an intensity change of ~2 ``scale``.

    Raises:
        InputError: ``scale`` is not positive.
    """
    if scale <= 0:
        raise InputError(f"likelihood scale must be > 0, got {scale}")
    d = np.asarray(distance, dtype=np.float32) / np.float32(scale)
    return np.exp(-(d * d)).astype(np.float32)
