"""Appearance-aware foreground prior from a CAM: intensity models learnt from the CAM's confident pixels.

A method of this project (not part of the original WIML release). The idea of fitting foreground and
background colour models to a rough initial labelling, combining them with a graph cut, and re-fitting them
from the cut's result comes from GrabCut (Rother, Kolmogorov and Blake, "GrabCut: Interactive Foreground
Extraction using Iterated Graph Cuts", ACM SIGGRAPH 2004). Here the rough labelling is the weak model's CAM
instead of a user's box, the colour models are smoothed intensity histograms of one channel, and the CAM
stays in the result as a spatial prior:

1. fg sample: pixels of ``region`` (the body / brain) with ``cam >= fg_threshold``; bg sample: pixels of
   ``region`` with ``cam <= bg_threshold`` (pixels outside ``region`` are ignored: air or the zero outside
   the brain would dominate the background model).
2. ``L_fg``, ``L_bg``: normalised, Gaussian-smoothed histograms of the two samples (``bins`` bins on [0, 1]).
3. Prior ``p = s * L_fg / (s * L_fg + (1 - s) * L_bg)`` (Bayes' rule with the spatial prior ``s``), where
   ``s = clip(spatial_floor + (1 - spatial_floor) * cam_blurred, 0, 1)`` inside ``region`` and 0 outside:
   the blurred CAM, floored so that appearance can add a target the CAM only grazes.
4. Optionally ``iterations`` GrabCut-style rounds: graph cut of ``p``, re-fit ``L_fg`` on the cut's mask and
   ``L_bg`` on the rest of ``region``, recompute ``p``.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from scipy import ndimage

from wiml.errors import InputError

logger = logging.getLogger(__name__)


def intensity_likelihood(
    image: np.ndarray, sample: np.ndarray, bins: int = 32, smoothing_bins: float = 1.0
) -> np.ndarray:
    """Likelihood of every pixel's intensity under the histogram of ``sample``'s pixels.

    Args:
        image: (H, W) float in [0, 1].
        sample: (H, W) bool, the pixels the histogram is made from (at least one).
        bins: histogram bins on [0, 1].
        smoothing_bins: Gaussian smoothing of the histogram, in bins (0 = none).

    Returns:
        (H, W) float32 density (integrates to 1 over [0, 1]), floored at a small positive value.
    """
    hist, _ = np.histogram(image[sample], bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    if smoothing_bins > 0:
        hist = ndimage.gaussian_filter1d(hist, smoothing_bins, mode="nearest")
    hist = hist / max(hist.sum(), 1e-12) * bins + 1e-3
    idx = np.clip((image * bins).astype(np.int64), 0, bins - 1)
    return hist[idx].astype(np.float32)


def appearance_posterior(
    image: np.ndarray,
    spatial: np.ndarray,
    fg: np.ndarray,
    bg: np.ndarray,
    bins: int = 32,
    smoothing_bins: float = 1.0,
) -> np.ndarray:
    """``s * L_fg / (s * L_fg + (1 - s) * L_bg)``: Bayes' rule with spatial prior ``s`` and intensity models.

    Args:
        image: (H, W) float in [0, 1].
        spatial: (H, W) float spatial prior in [0, 1].
        fg: (H, W) bool foreground sample; bg: (H, W) bool background sample (both non-empty).
        bins: histogram bins; smoothing_bins: histogram smoothing (see :func:`intensity_likelihood`).

    Returns:
        (H, W) float32 in [0, 1].
    """
    lf = intensity_likelihood(image, fg, bins, smoothing_bins)
    lb = intensity_likelihood(image, bg, bins, smoothing_bins)
    num = spatial * lf
    return np.clip(num / np.maximum(num + (1.0 - spatial) * lb, 1e-12), 0.0, 1.0).astype(np.float32)


def appearance_prior(
    image: np.ndarray,
    cam: np.ndarray,
    region: np.ndarray | None = None,
    *,
    fg_threshold: float = 0.5,
    bg_threshold: float = 0.1,
    spatial_floor: float = 0.2,
    blur_px: float = 2.0,
    bins: int = 32,
    smoothing_bins: float = 1.0,
    iterations: int = 0,
    lam: float | None = None,
    sigma: float | None = None,
    min_samples: int = 10,
) -> np.ndarray:
    """Appearance-aware foreground probability from a CAM (see the module docstring; after GrabCut, 2004).

    Args:
        image: (H, W) float in [0, 1] (the channel the graph cut sees, e.g. FLAIR or windowed CT).
        cam: (H, W) float CAM in [0, 1].
        region: (H, W) bool where the target can be (body / brain); None = the whole image.
        fg_threshold: CAM value from which a pixel is a foreground sample.
        bg_threshold: CAM value up to which a pixel of ``region`` is a background sample.
        spatial_floor: lowest spatial prior inside ``region`` (0 = the CAM alone decides where).
        blur_px: Gaussian blur of the CAM before it is used as the spatial prior, px (0 = none).
        bins: histogram bins on [0, 1].
        smoothing_bins: histogram smoothing, bins.
        iterations: GrabCut-style re-estimation rounds from the graph cut's mask (0 = none).
        lam: graph-cut pairwise weight of those rounds (``RefinementConfig.lam``; needed when ``iterations`` > 0).
        sigma: graph-cut intensity scale of those rounds (``RefinementConfig.sigma``; needed likewise).
        min_samples: fewer fg or bg sample pixels than this: the CAM is returned unchanged (no appearance).

    Returns:
        (H, W) float32 foreground probability in [0, 1]; zero outside ``region``; all zeros for an all-zero
        CAM; the CAM itself when the samples are too small (e.g. a constant image still gives a valid map).

    Raises:
        InputError: shapes differ, values are not finite, or a parameter is out of range.
    """
    image = np.asarray(image, dtype=np.float32)
    cam = np.asarray(cam, dtype=np.float32)
    if image.ndim != 2 or cam.shape != image.shape:
        raise InputError(
            f"image must be (H, W) and the CAM of the same shape; got {image.shape} and {cam.shape}"
        )
    if not (np.isfinite(image).all() and np.isfinite(cam).all()):
        raise InputError("image and CAM must be finite")
    if (
        not 0.0 <= bg_threshold < fg_threshold <= 1.0
        or not 0.0 <= spatial_floor < 1.0
        or bins < 2
        or iterations < 0
    ):
        raise InputError(
            f"need 0 <= bg_threshold < fg_threshold <= 1, 0 <= spatial_floor < 1, bins >= 2, "
            f"iterations >= 0; got {bg_threshold}, {fg_threshold}, {spatial_floor}, {bins}, {iterations}"
        )
    if iterations > 0 and (lam is None or sigma is None):
        raise InputError("appearance_prior: GrabCut-style iterations need the graph cut's lam and sigma")
    cam = np.clip(cam, 0.0, 1.0)
    region = np.ones(image.shape, bool) if region is None else np.asarray(region, bool)
    if region.shape != image.shape:
        raise InputError(f"region shape {region.shape} does not match the image {image.shape}")
    if cam.max() <= 0.0:
        return np.zeros_like(cam)
    image = np.clip(image, 0.0, 1.0)
    fg = region & (cam >= fg_threshold)
    bg = region & (cam <= bg_threshold)
    if fg.sum() < min_samples or bg.sum() < min_samples or np.ptp(image[region]) <= 1e-6:
        logger.debug("appearance prior: too few samples or a flat image; CAM kept")
        return cam
    blurred = ndimage.gaussian_filter(cam, blur_px) if blur_px > 0 else cam
    blurred = blurred / max(float(blurred.max()), 1e-12)
    spatial = np.where(region, spatial_floor + (1.0 - spatial_floor) * blurred, 0.0).astype(np.float32)
    spatial = np.clip(spatial, 0.0, 1.0 - 1e-4)
    prob = appearance_posterior(image, spatial, fg, bg, bins, smoothing_bins)
    for _ in range(iterations):
        from wiml.interactive.graphcut import graph_cut

        mask = graph_cut(image, prob, lam=lam, sigma=sigma).astype(bool) & region
        rest = region & ~mask
        if mask.sum() < min_samples or rest.sum() < min_samples:
            break
        prob = appearance_posterior(image, spatial, mask, rest, bins, smoothing_bins)
    return np.where(region, prob, 0.0).astype(np.float32)


@dataclasses.dataclass
class AppearanceConfig:
    """Parameters of :func:`appearance_prior` (see its docstring); chosen on validation slices
    (docs/results.md). ``prior(image, cam, region)`` applies them."""

    fg_threshold: float = 0.5
    bg_threshold: float = 0.2
    spatial_floor: float = 0.2
    blur_px: float = 2.0
    bins: int = 32
    smoothing_bins: float = 1.0
    iterations: int = 0
    min_samples: int = 10

    def prior(
        self,
        image: np.ndarray,
        cam: np.ndarray,
        region: np.ndarray | None = None,
        lam: float | None = None,
        sigma: float | None = None,
    ) -> np.ndarray:
        """:func:`appearance_prior` with these parameters; (H, W) float32 in [0, 1]."""
        return appearance_prior(image, cam, region, lam=lam, sigma=sigma, **dataclasses.asdict(self))
