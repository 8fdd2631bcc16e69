"""Headless click refinement: the engine behind the WIA annotator and the robot-user simulation.

Each click re-runs the refinement of the original WIML release (Nie et al., IEEE JBHI 2023) from all
clicks so far (the settings that differ from the original are measured in docs/results.md):

1. geodesic distance maps of the foreground and the background click disks on the smoothed, standardised
   image (:func:`wiml.interactive.geodesic.geodesic_distance`),
2. click likelihoods ``exp(-(d / scale)^2)`` (:func:`wiml.interactive.geodesic.click_likelihood`), times a
   Gaussian decay with the Euclidean distance to the click (``spatial_scale``; the original has none),
3. combined with the prior (the CAM, or a constant when there is none): a noisy-OR with foreground clicks,
   the smooth form of the original's per-pixel maximum (:func:`combine_probabilities`),
4. an interactive graph cut with the click disks as hard constraints
   (:func:`wiml.interactive.graphcut.graph_cut`; Boykov & Jolly, ICCV 2001),
5. post-processing that keeps the components of the foreground clicks
   (:func:`wiml.interactive.postprocess.postprocess_mask`).

Optionally (``mask_prior`` > 0, this project's method) the current mask is a prior for the next refinement,
so that a click changes the mask mainly near itself (:func:`blend_previous_mask`): where the newest click's
likelihood is low, the foreground probability is pulled towards the mask before the click.

Speed: the graph cut and the post-processing run only inside a region of interest (ROI), the bounding
box of every pixel that could turn foreground (combined probability >= ``roi_threshold``, foreground
clicks) grown by ``roi_margin_px``. Outside it the combined probability is low, so the whole-image cut
labels it background too; ``roi_margin_px=None`` runs the cut on the whole image (the original's way).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import ClassVar

import numpy as np
from scipy import ndimage

from wiml.config import check_ranges
from wiml.errors import InputError
from wiml.interactive.appearance import AppearanceConfig
from wiml.interactive.geodesic import BACKENDS, click_likelihood, geodesic_distance
from wiml.interactive.graphcut import graph_cut
from wiml.interactive.postprocess import postprocess_mask

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Click:
    """One click.

    Attributes:
        row: row in pixels (0 = top).
        col: column in pixels (0 = left).
        label: 1 foreground (left click), 0 background (right click).
        t_s: seconds since the image was set when the click was made.
    """

    row: int
    col: int
    label: int
    t_s: float = 0.0

    def to_dict(self) -> dict:
        """``{"row", "col", "label", "t_s"}`` as in the interaction records of docs/architecture.md."""
        return {
            "row": int(self.row),
            "col": int(self.col),
            "label": int(self.label),
            "t_s": round(self.t_s, 4),
        }


def normalize_image(image: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Scale any grey image to float32 in [0, 1].

    Args:
        image: (H, W) of any numeric dtype (uint8, uint16, int16 HU, float), or (H, W, 3|4) RGB(A), which is
            averaged over its colour channels.
        value_range: (low, high) in the input's units (e.g. a CT window in HU) mapped to [0, 1] and clipped;
            default: the image's own minimum and maximum.

    Returns:
        (H, W) float32 in [0, 1]; all zeros for a constant image.

    Raises:
        InputError: not 2-D (or 2-D + colour), empty, non-finite values, or ``high <= low``.
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = arr[..., :3].astype(np.float32).mean(axis=-1)
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(
            f"image must be a non-empty 2-D (H, W) array (or (H, W, 3) RGB), got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"image must be real-valued, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise InputError("image has NaN or infinite values")
    if arr.dtype.itemsize > 4 and np.issubdtype(arr.dtype, np.floating):
        peak = float(np.abs(arr).max())
        if (
            peak > float(np.finfo(np.float32).max) / 4
        ):  # finite float64 beyond float32: scale down (min-max invariant)
            arr = arr / peak
            value_range = None if value_range is None else (value_range[0] / peak, value_range[1] / peak)
    arr = arr.astype(np.float32)
    lo, hi = (float(arr.min()), float(arr.max())) if value_range is None else map(float, value_range)
    if value_range is not None and hi <= lo:
        raise InputError(f"value_range must be (low, high) with high > low, got {value_range}")
    if hi <= lo:
        return np.zeros(arr.shape, np.float32)
    return np.clip((arr - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def standardize(image: np.ndarray, smoothing_px: float = 0.0) -> np.ndarray:
    """Zero-mean, unit-variance copy of ``image`` (float32), optionally Gaussian-smoothed first.

    Args:
        image: (H, W) image, or (C, H, W): each channel standardised on its own and divided by sqrt(C), so
            that a step of one standard deviation in every channel counts as one.
        smoothing_px: standard deviation of a Gaussian smoothing in px (0 = none); it keeps image noise from
            adding up along geodesic paths.

    Returns:
        (H, W) or (C, H, W) float32; zeros for a constant image.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        chans = [standardize(ch, smoothing_px) for ch in image]
        return (np.stack(chans) / np.float32(np.sqrt(len(chans)))).astype(np.float32)
    if smoothing_px > 0:
        image = ndimage.gaussian_filter(image, float(smoothing_px))
    std = float(image.std())
    return ((image - float(image.mean())) / (std if std > 0 else 1.0)).astype(np.float32)


def _disk(radius_px: int) -> np.ndarray:
    r = int(radius_px)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy * yy + xx * xx) <= r * r


def click_disks(
    shape: tuple[int, int],
    clicks: list[Click],
    radius_px: int = 2,
    radii_px: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the clicks as disks.

    Args:
        shape: (H, W) of the image.
        clicks: clicks (row, col in px, label 1/0).
        radius_px: disk radius in pixels (0 = the clicked pixel only).
        radii_px: optional radius of each click (same length as ``clicks``), overriding ``radius_px``.

    Returns:
        (fg_seeds, bg_seeds): two (H, W) bool masks. A pixel in both (overlapping disks) goes to the most
        recent click.
    """
    h, w = shape
    fg = np.zeros(shape, bool)
    bg = np.zeros(shape, bool)
    if radii_px is not None and len(radii_px) != len(clicks):
        raise InputError(f"radii_px has {len(radii_px)} entries for {len(clicks)} clicks")
    for i, c in enumerate(clicks):
        r = int(radius_px if radii_px is None else radii_px[i])
        disk = _disk(r)
        r0, r1 = max(c.row - r, 0), min(c.row + r + 1, h)
        c0, c1 = max(c.col - r, 0), min(c.col + r + 1, w)
        d = disk[r0 - (c.row - r) : r1 - (c.row - r), c0 - (c.col - r) : c1 - (c.col - r)]
        (fg if c.label else bg)[r0:r1, c0:c1] |= d
        (bg if c.label else fg)[r0:r1, c0:c1] &= ~d
    return fg, bg


def nearest_point_distance(shape: tuple[int, int], points: list[tuple[int, int]]) -> np.ndarray:
    """Euclidean distance (px) of every pixel to the nearest of a few points; (H, W) float32.

    Cheaper than a distance transform for the handful of clicks of an annotation (O(N H W) with small N).
    """
    rows = np.arange(shape[0], dtype=np.float32)[:, None]
    cols = np.arange(shape[1], dtype=np.float32)[None, :]
    best = np.full(shape, np.inf, np.float32)
    for r, c in points:
        np.minimum(best, (rows - r) ** 2 + (cols - c) ** 2, out=best)
    return np.sqrt(best)


def spatial_decay(
    shape: tuple[int, int], points: list[tuple[int, int]], scales_px: list[float]
) -> np.ndarray:
    """``max_i exp(-(e_i / s_i)^2)``: the Euclidean decay of a few clicks, each with its own scale.

    Args:
        shape: (H, W).
        points: (row, col) of each click, px.
        scales_px: decay scale of each click, px (> 0; ``inf`` = no decay).

    Returns:
        (H, W) float32 in [0, 1]; zeros without points.
    """
    rows = np.arange(shape[0], dtype=np.float32)[:, None]
    cols = np.arange(shape[1], dtype=np.float32)[None, :]
    best = np.zeros(shape, np.float32)
    for (r, c), scale in zip(points, scales_px, strict=True):
        if not np.isfinite(scale):
            return np.ones(shape, np.float32)
        d2 = ((rows - r) ** 2 + (cols - c) ** 2) / np.float32(scale) ** 2
        np.maximum(best, np.exp(-d2), out=best)
    return best


def boundary_distance_px(mask: np.ndarray, row: int, col: int) -> float:
    """Euclidean distance (px) from a pixel to the other class of ``mask`` (``inf`` when there is none).

    For a pixel inside the mask: the distance to the nearest background pixel; outside: to the nearest
    foreground pixel. A click's distance to the current boundary says how large the error it corrects is.
    """
    m = np.asarray(mask) > 0
    inside = bool(m[row, col])
    other = ~m if inside else m
    if not other.any():
        return float("inf")
    return float(ndimage.distance_transform_edt(~other)[row, col])


def adaptive_click_scale(
    distance_px: float, factor: float, min_px: float, max_px: float, click_radius_px: int
) -> tuple[float, int]:
    """Euclidean decay scale and hard-seed radius of a click that lies ``distance_px`` from the boundary.

    A click near the current boundary corrects a thin error there, so its reach is kept to about
    ``factor * distance_px`` (at least ``min_px``, at most ``max_px``) and its seed disk never reaches the
    boundary (radius at most ``distance_px - 1``, at least 0). A click far from any mask (the first click)
    gets ``max_px`` and the full radius.

    Returns:
        (scale_px, radius_px).
    """
    scale = float(np.clip(factor * distance_px, min_px, max_px)) if np.isfinite(distance_px) else max_px
    radius = int(click_radius_px)
    if np.isfinite(distance_px):
        radius = int(max(0, min(radius, np.floor(distance_px) - 1)))
    return scale, radius


def combine_probabilities(
    prior: np.ndarray, fg_likelihood: np.ndarray | None = None, bg_likelihood: np.ndarray | None = None
) -> np.ndarray:
    """Foreground probability from the prior and the click likelihoods.

    The clicks override the prior as far as they reach: with ``c = max(L_fg, L_bg)`` (how much the clicks
    say about a pixel) and ``q = L_fg / (L_fg + L_bg)`` (which class they favour there),
    ``P = c * q + (1 - c) * prior``. With foreground clicks only this is the noisy-OR
    ``1 - (1 - prior)(1 - L_fg)`` (never below the prior or the likelihood, the original's per-pixel maximum
    made smooth); with background clicks only it is ``prior * (1 - L_bg)``; where both kinds of clicks reach
    equally, ``P`` is near 0.5 and the graph cut's contrast term decides; far from every click the prior stays.

    Args:
        prior: (H, W) foreground probability before the clicks (CAM in [0, 1], or a constant).
        fg_likelihood: (H, W) in [0, 1] from the foreground clicks, or None when there are none.
        bg_likelihood: (H, W) in [0, 1] from the background clicks, or None.

    Returns:
        (H, W) float32 foreground probability in [0, 1].
    """
    prior = np.asarray(prior, dtype=np.float32)
    zeros = np.zeros_like(prior)
    lf = zeros if fg_likelihood is None else np.asarray(fg_likelihood, np.float32)
    lb = zeros if bg_likelihood is None else np.asarray(bg_likelihood, np.float32)
    reach = np.maximum(lf, lb)
    favour = lf / np.maximum(lf + lb, 1e-12)
    return np.clip(reach * favour + (1.0 - reach) * prior, 0.0, 1.0).astype(np.float32)


def blend_previous_mask(
    prob: np.ndarray, previous_mask: np.ndarray, newest_likelihood: np.ndarray, mask_prior: float
) -> np.ndarray:
    """Use the mask before a click as a prior where the click says little (this project's method).

    Each refinement re-runs the graph cut from all clicks, so without this a background click next to the
    target can flip far-away parts that were right. With ``w = mask_prior * (1 - r)``, where ``r`` (in [0, 1])
    is the newest click's likelihood (geodesic times Euclidean decay, as in :func:`refine_mask`),
    ``P' = (1 - w) P + w M``: near the newest click (``r`` ~ 1) the usual probability ``P`` decides; far from
    it (``r`` ~ 0) the previous mask ``M`` does, fully when ``mask_prior`` = 1. 0 = the original behaviour.

    Args:
        prob: (H, W) float32 foreground probability from the prior and all clicks.
        previous_mask: (H, W) uint8/bool mask before the newest click.
        newest_likelihood: (H, W) float32 in [0, 1], the newest click's likelihood.
        mask_prior: weight in [0, 1].

    Returns:
        (H, W) float32 foreground probability in [0, 1].
    """
    w = float(mask_prior) * (1.0 - np.asarray(newest_likelihood, np.float32))
    prev = (np.asarray(previous_mask) > 0).astype(np.float32)
    return np.clip((1.0 - w) * prob + w * prev, 0.0, 1.0).astype(np.float32)


def region_of_interest(candidates: np.ndarray, margin_px: int) -> tuple[slice, slice] | None:
    """Bounding box of the non-zero pixels of ``candidates`` grown by ``margin_px`` (clipped to the image).

    Returns:
        (row slice, column slice), or None when ``candidates`` is empty.
    """
    rows = np.flatnonzero(candidates.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(candidates.any(axis=0))
    h, w = candidates.shape
    m = int(margin_px)
    return (
        slice(max(rows[0] - m, 0), min(rows[-1] + m + 1, h)),
        slice(max(cols[0] - m, 0), min(cols[-1] + m + 1, w)),
    )


def refine_mask(
    image: np.ndarray,
    prior: np.ndarray,
    clicks: list[Click],
    config: RefinementConfig | None = None,
    *,
    std_image: np.ndarray | None = None,
    postprocess: bool = True,
    previous_mask: np.ndarray | None = None,
    click_scales_px: list[float] | None = None,
    click_radii_px: list[int] | None = None,
) -> np.ndarray:
    """One refinement from scratch: geodesic likelihoods + prior -> interactive graph cut -> post-processing.

    Args:
        image: (H, W) float32 in [0, 1] (the graph cut's ``sigma`` is in these units), or (C, H, W).
        prior: (H, W) float32 foreground probability before any click (a proposal, or a constant).
        clicks: all clicks so far (may be empty: then this is the initial mask of the prior).
        config: the parameters (:class:`RefinementConfig`; lam, sigma, click radius, likelihood and spatial
            scales, ROI, ``mask_prior``, post-processing radii); its defaults when None. ``adaptive_scale`` is
            applied by :class:`RefinementSession`, which passes ``click_scales_px`` / ``click_radii_px``.
        std_image: (H, W) standardised image for the geodesic distances; computed from ``image`` when None.
        postprocess: apply :func:`wiml.interactive.postprocess.postprocess_mask` (keeping the foreground clicks'
            components) and force the background click disks to background.
        previous_mask: (H, W) mask before the newest click (``clicks[-1]``), used with ``config.mask_prior``
            (:func:`blend_previous_mask`); None or no click = the original behaviour.
        click_scales_px: optional Euclidean decay scale of each click, px (see :func:`adaptive_click_scale`);
            replaces ``spatial_scale`` for those clicks.
        click_radii_px: optional seed-disk radius of each click, px; replaces ``click_radius_px``.

    Returns:
        (H, W) uint8 mask in {0, 1}.

    Raises:
        InputError: shapes do not match, or a parameter is out of range.
    """
    c = (config or RefinementConfig()).validate()
    lam, sigma, click_radius_px, backend = c.lam, c.sigma, c.click_radius_px, c.backend
    likelihood_scale, spatial_scale, smoothing_px = c.likelihood_scale, c.spatial_scale, c.smoothing_px
    roi_margin_px, roi_threshold, mask_prior = c.roi_margin_px, c.roi_threshold, c.mask_prior
    image = np.asarray(image, dtype=np.float32)
    if image.ndim not in (2, 3):
        raise InputError(f"image must be (H, W) or (C, H, W), got shape {image.shape}")
    full = image
    shape = image.shape[-2:]
    prior = np.asarray(prior, dtype=np.float32)
    if prior.shape != shape:
        raise InputError(f"prior shape {prior.shape} does not match the image {shape}")
    fg_seeds, bg_seeds = click_disks(shape, clicks, click_radius_px, click_radii_px)
    lf = lb = None
    if fg_seeds.any() or bg_seeds.any():
        std_image = standardize(image, smoothing_px) if std_image is None else std_image
        spatial_px = None if spatial_scale is None else spatial_scale * max(shape)
        for label, seeds in ((1, fg_seeds), (0, bg_seeds)):
            if not seeds.any():
                continue
            lik = click_likelihood(geodesic_distance(std_image, seeds, backend), likelihood_scale)
            points = [(c.row, c.col) for c in clicks if c.label == label]
            if click_scales_px is not None:
                scales = [sc for c, sc in zip(clicks, click_scales_px, strict=True) if c.label == label]
                lik *= spatial_decay(shape, points, scales)
            elif spatial_px:
                lik *= click_likelihood(nearest_point_distance(shape, points), spatial_px)
            if label:
                lf = lik
            else:
                lb = lik
    prob = combine_probabilities(prior, lf, lb)
    if mask_prior > 0 and previous_mask is not None and clicks:
        if np.shape(previous_mask) != shape:
            raise InputError(
                f"previous mask shape {np.shape(previous_mask)} does not match the image {shape}"
            )
        newest = clicks[-1]
        radius = click_radius_px if click_radii_px is None else click_radii_px[-1]
        seeds = click_disks(shape, [Click(newest.row, newest.col, 1)], radius)[0]
        reach = click_likelihood(geodesic_distance(std_image, seeds, backend), likelihood_scale)
        if click_scales_px is not None:
            reach *= spatial_decay(shape, [(newest.row, newest.col)], [click_scales_px[-1]])
        elif spatial_scale:
            reach *= click_likelihood(
                nearest_point_distance(shape, [(newest.row, newest.col)]),
                spatial_scale * max(shape),
            )
        prob = blend_previous_mask(prob, previous_mask, reach, mask_prior)
    prob[fg_seeds] = 1.0
    prob[bg_seeds] = 0.0
    if roi_margin_px is None:
        roi = (slice(0, shape[0]), slice(0, shape[1]))
    else:
        roi = region_of_interest((prob >= roi_threshold) | fg_seeds, roi_margin_px)
    out = np.zeros(shape, np.uint8)
    if roi is None:
        return out
    cut = graph_cut(
        full[(slice(None),) + roi] if full.ndim == 3 else full[roi],
        prob[roi],
        lam=lam,
        sigma=sigma,
        fg_seeds=fg_seeds[roi],
        bg_seeds=bg_seeds[roi],
    )
    if postprocess:
        cut = postprocess_mask(
            cut, open_radius_px=c.open_radius_px, close_radius_px=c.close_radius_px, keep=fg_seeds[roi]
        )
        cut[bg_seeds[roi]] = 0
    out[roi] = cut
    return out


def initial_mask(image: np.ndarray, prior: np.ndarray, config: RefinementConfig | None = None) -> np.ndarray:
    """The initial mask of a proposal: :func:`refine_mask` of the prior without clicks (graph cut in the
    region of interest, post-processing). The one initial-mask function: :class:`RefinementSession`,
    ``wiml cam`` (:func:`wiml.cam.cam_to_initial_mask`), ``wiml wia-sim`` and the annotator all use it.

    Args:
        image: (H, W) or (C, H, W) float32 in [0, 1].
        prior: (H, W) float32 foreground probability (a proposal, :mod:`wiml.interactive.proposals`).
        config: refinement parameters (defaults when None).

    Returns:
        (H, W) uint8 in {0, 1}.
    """
    config = (config or RefinementConfig()).validate()
    return refine_mask(image, prior, [], config)


@dataclasses.dataclass
class RefinementConfig:
    """Parameters of the refinement: the one graph-cut parameter set (``lam``, ``sigma``) and everything else
    a :class:`RefinementSession` needs. ``wiml cam``, ``wiml wia-sim``, ``wiml wia-session`` and the annotator
    nest this one object, so the initial mask, the proposals and every click are computed with the same
    settings. ``make_session()`` builds a session.

    Attributes:
        lam: graph-cut pairwise weight (the original's 5.0; 10.0 by default, chosen with ``sigma`` 0.05 on the
            BraTS and liver validation slices, docs/results.md "Refinement on brain tumours").
        sigma: graph-cut intensity scale on the image normalised to [0, 1] (the original's 0.1; 0.05).
        click_radius_px: radius of a click disk, px (hard constraint).
        backend: geodesic backend, ``"fastgeodis"`` (default) or ``"geodistk"``.
        likelihood_scale: distance scale of the click likelihood ``exp(-(d / scale)^2)``, in intensity standard
            deviations of the (smoothed) image; 1.0 = the original's ``exp(-d^2)``. 2.0 by default (tuned on the
            validation slices of liver CT and BraTS, docs/results.md).
        spatial_scale: the click likelihood is also multiplied by ``exp(-(e / (spatial_scale * max(H, W)))^2)``
            of the Euclidean distance ``e`` to the nearest click of its class, so that a click cannot claim a
            whole flat region across the image (e.g. all the fat of a CT slice); None = off (the original).
        smoothing_px: Gaussian smoothing (px) of the image the geodesic distances run on, so that noise does not
            add up along paths; 0 = none (the original).
        roi_margin_px: margin of the region of interest the graph cut runs in, px; None = whole image.
        roi_threshold: combined probability from which a pixel belongs to the ROI's core.
        empty_prior: constant foreground prior when there is no CAM (< 0.5: background unless clicked).
        cam_threshold: CAM value that counts as probability 0.5: the prior is ``clip(cam * 0.5 / cam_threshold,
            0, 1)`` (a calibration for weak models whose CAM is low over most of the target, chosen on
            validation slices); None = the CAM itself is the probability (the original).
        cam_appearance: replace the CAM prior by the appearance-aware prior of
            :mod:`wiml.interactive.appearance` (intensity models of the CAM's confident pixels inside the body,
            after GrabCut; this project's method) with the parameters ``appearance``; applied after
            ``cam_threshold``. True by default (chosen on liver validation slices,
            docs/results.md); False = the CAM alone (the original).
        mask_prior: weight in [0, 1] of the current mask as a prior for the next click's refinement, applied
            where the new click's likelihood is low (:func:`blend_previous_mask`; this project's method), so a
            click changes the mask mainly near itself; 0 = each click re-cuts from the prior and all clicks
            only (the original). 0 by default since the adaptive click reach (0.5 was the default before it;
            docs/results.md). Undo and reset restore earlier masks exactly either way.
        adaptive_scale: when set, each click's reach is local to the error it corrects: its Euclidean decay
            scale is ``adaptive_scale`` times its distance to the current mask's boundary (between
            ``min_scale_px`` and ``spatial_scale * max(H, W)``) and its seed disk stays off that boundary
            (:func:`adaptive_click_scale`; this project's method). 3.0 by default; None = every click has the
            same reach.
        min_scale_px: smallest decay scale of a click with ``adaptive_scale``, px.
        open_radius_px: opening radius of the post-processing after each cut, px (0 = none; an opening
            removes thin parts, which costs clicks on small targets).
        close_radius_px: closing radius of that post-processing, px (0 = none).
        appearance: parameters of the appearance-aware CAM prior
            (:class:`~wiml.interactive.appearance.AppearanceConfig`).

    Raises:
        InputError: (from :meth:`validate`) a parameter is out of range.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "lam": ">= 0",
        "sigma": "> 0",
        "click_radius_px": ">= 0",
        "likelihood_scale": "> 0",
        "spatial_scale": "> 0",
        "smoothing_px": ">= 0",
        "roi_margin_px": ">= 0",
        "roi_threshold": "(0, 1)",
        "empty_prior": "[0, 0.5)",
        "cam_threshold": "(0, 1)",
        "mask_prior": "[0, 1]",
        "adaptive_scale": "> 0",
        "min_scale_px": "> 0",
        "open_radius_px": ">= 0",
        "close_radius_px": ">= 0",
    }

    lam: float = 10.0
    sigma: float = 0.05
    click_radius_px: int = 2
    backend: str = "fastgeodis"
    likelihood_scale: float = 2.0
    spatial_scale: float | None = 0.3
    smoothing_px: float = 2.0
    roi_margin_px: int | None = 16
    roi_threshold: float = 0.4
    empty_prior: float = 0.3
    cam_threshold: float | None = None
    cam_appearance: bool = True
    mask_prior: float = 0.0
    adaptive_scale: float | None = 3.0
    min_scale_px: float = 2.0
    open_radius_px: int = 0
    close_radius_px: int = 1
    appearance: AppearanceConfig = dataclasses.field(default_factory=AppearanceConfig)

    def __post_init__(self) -> None:
        if isinstance(self.appearance, dict):  # from dataclasses.asdict / YAML
            self.appearance = AppearanceConfig(**self.appearance)

    def validate(self) -> RefinementConfig:
        """Check every parameter; returns ``self``.

        Raises:
            InputError: naming the parameter that is out of range.
        """
        if self.backend not in BACKENDS:
            raise InputError(f"unknown geodesic backend {self.backend!r}; expected one of {BACKENDS}")
        check_ranges(self)  # RANGES above (None = off, where a setting may be None)
        if not 0.0 <= self.empty_prior < min(0.5, self.roi_threshold):
            raise InputError(f"empty_prior must be in [0, min(0.5, roi_threshold)), got {self.empty_prior}")
        return self

    def make_session(self) -> RefinementSession:
        """A :class:`RefinementSession` with these parameters."""
        return RefinementSession(self)


class RefinementSession:
    """Click-by-click refinement of one image (no GUI toolkit; the GUI and the robot user drive it).

    Example:
        >>> s = RefinementSession()                       # or RefinementConfig(...).make_session()
        >>> s.set_image(image, cam=cam)          # image (H, W) any dtype; cam (H, W) in [0, 1] or None
        >>> mask = s.initial_mask()              # CAM -> graph cut -> post-processing (zeros without CAM)
        >>> mask = s.add_click(40, 52, foreground=True)
        >>> mask = s.undo()

    Args:
        config: the parameters (:class:`RefinementConfig`; its defaults when None).
        **overrides: single parameters replacing those of ``config`` (e.g. ``mask_prior=0``).

    Raises:
        InputError: a parameter is out of range or unknown.
    """

    def __init__(self, config: RefinementConfig | None = None, **overrides) -> None:
        config = config or RefinementConfig()
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(RefinementConfig)})
        if unknown:
            raise InputError(f"unknown refinement parameter(s) {unknown}")
        self.config = dataclasses.replace(config, **overrides).validate()
        for field in dataclasses.fields(RefinementConfig):
            if field.name != "appearance":
                setattr(self, field.name, getattr(self.config, field.name))
        self._scales: list[tuple[float, int]] = []
        self.proposal_source = "none"
        self._image: np.ndarray | None = None
        self._std: np.ndarray | None = None
        self._prior: np.ndarray | None = None
        self._initial: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._history: list[np.ndarray] = []
        self._clicks: list[Click] = []
        self._t0 = time.perf_counter()
        self.cam: np.ndarray | None = None
        self.last_seconds = 0.0

    # ------------------------------------------------------------------ image
    def set_image(
        self,
        image: np.ndarray,
        cam: np.ndarray | None = None,
        value_range: tuple[float, float] | None = None,
        channels_first: bool = False,
        prior: np.ndarray | None = None,
        source: str | None = None,
    ) -> None:
        """Start a new annotation; the current mask becomes the initial mask.

        Args:
            image: (H, W) of any size and numeric dtype (8/16-bit, HU, float) or (H, W, 3) RGB; scaled to [0, 1]
                by :func:`normalize_image`. With ``channels_first``: (C, H, W), several channels (e.g. FLAIR and
                T1c) that the geodesic distances and the graph cut both see, each scaled to [0, 1].
            cam: optional (H, W) class activation map in [0, 1]: the proposal is its prior (:meth:`cam_prior`)
                unless ``prior`` is given (the CAM is then kept in :attr:`cam` for display only).
            value_range: optional (low, high) intensity window (e.g. HU) mapped to [0, 1].
            prior: optional (H, W) foreground probability, any other proposal (see :meth:`set_proposal`).
            source: name of the proposal for :attr:`proposal_source`.

        Raises:
            InputError: a malformed image, or a CAM of another shape / with values outside [0, 1].
        """
        if channels_first:
            arr = np.asarray(image)
            if arr.ndim != 3 or arr.shape[0] < 1:
                raise InputError(f"a channels-first image must be (C, H, W), got shape {arr.shape}")
            chans = np.stack([normalize_image(ch, value_range) for ch in arr])
            img = chans[0] if chans.shape[0] == 1 else chans
        else:
            img = normalize_image(image, value_range)
        grey = img if img.ndim == 2 else img[0]
        if cam is not None:
            cam = np.asarray(cam, dtype=np.float32)
            if cam.shape != grey.shape:
                raise InputError(f"CAM shape {cam.shape} does not match the image {grey.shape}")
            if not np.isfinite(cam).all() or cam.min() < -1e-3 or cam.max() > 1 + 1e-3:
                raise InputError("CAM values must be finite and in [0, 1]")
            cam = np.clip(cam, 0.0, 1.0)
        self._image = img
        self._std = standardize(img, self.smoothing_px)
        self.cam = cam
        if prior is not None:
            self.set_proposal(prior, source)
            return
        if cam is None:
            self.set_proposal(None, "none")
        else:
            self.set_proposal(self.cam_prior(cam), source or "cam")

    def cam_prior(self, cam: np.ndarray) -> np.ndarray:
        """The prior of a CAM proposal on the current image with this session's settings
        (:func:`wiml.interactive.proposals.cam_prior`: ``cam_threshold``, then the appearance-aware prior when
        ``cam_appearance``). (H, W) float32."""
        from wiml.interactive.proposals import cam_prior

        self._require_image()
        grey = self._image if self._image.ndim == 2 else self._image[0]
        appearance = self.config.appearance if self.cam_appearance else None
        return cam_prior(grey, cam, self.cam_threshold, appearance, lam=self.lam, sigma=self.sigma)

    def set_proposal(self, prior: np.ndarray | None, source: str | None = None) -> np.ndarray:
        """Start the current image again from a proposal: clicks are cleared, the initial mask is recomputed.

        Args:
            prior: (H, W) foreground probability in [0, 1] (from :mod:`wiml.interactive.proposals`: a CAM prior,
                :func:`~wiml.interactive.proposals.box_prior`, :func:`~wiml.interactive.proposals.mask_to_prior`,
                :func:`~wiml.interactive.proposals.probability_prior`); None = no proposal (the constant
                ``empty_prior``, an empty initial mask).
            source: name of the proposal (``none``, ``cam``, ``box``, ``propagate``, ``bootstrap``, ...), kept in
                :attr:`proposal_source`.

        Returns:
            (H, W) uint8 initial mask (graph cut of the prior with the refinement's settings; zeros for None).

        Raises:
            InputError: no image set, or a prior of another shape / outside [0, 1].
        """
        self._require_image()
        shape = self.shape
        if prior is None:
            self._prior = np.full(shape, self.empty_prior, np.float32)
        else:
            prior = np.asarray(prior, np.float32)
            if prior.shape != shape:
                raise InputError(f"proposal shape {prior.shape} does not match the image {shape}")
            if not np.isfinite(prior).all() or prior.min() < -1e-3 or prior.max() > 1 + 1e-3:
                raise InputError("proposal values must be finite and in [0, 1]")
            self._prior = np.clip(prior, 0.0, 1.0).astype(np.float32)
        self.proposal_source = source or ("none" if prior is None else "prior")
        self._clicks = []
        self._scales = []
        self._history = []
        self._t0 = time.perf_counter()
        self._mask = None
        self._initial = (
            initial_mask(self._image, self._prior, self.config)
            if prior is not None
            else np.zeros(shape, np.uint8)
        )
        self._mask = self._initial.copy()
        return self._initial.copy()

    def set_box(self, box: tuple[int, int, int, int], config=None) -> np.ndarray:
        """Start the current image from a box proposal (a drag in the GUI; GrabCut-style inside the box,
        :func:`wiml.interactive.proposals.box_prior` with this session's ``lam`` / ``sigma``).

        Args:
            box: (row0, col0, row1, col1), inclusive corners in px.
            config: optional :class:`wiml.interactive.proposals.ProposalConfig`.

        Returns:
            (H, W) uint8 initial mask.
        """
        from wiml.interactive.proposals import box_prior

        self._require_image()
        return self.set_proposal(box_prior(self._image, box, config, lam=self.lam, sigma=self.sigma), "box")

    @property
    def prior(self) -> np.ndarray:
        """(H, W) float32 foreground probability the current annotation started from (a copy)."""
        self._require_image()
        return self._prior.copy()

    def predict(self) -> np.ndarray:
        """The current mask, (H, W) uint8 (the proposal's initial mask refined by the clicks so far)."""
        return self.mask

    @property
    def image(self) -> np.ndarray:
        """(H, W) float32 image in [0, 1] as the refinement sees it ((C, H, W) for a channels-first image)."""
        self._require_image()
        return self._image

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return tuple(self.image.shape[-2:])

    @property
    def mask(self) -> np.ndarray:
        """(H, W) uint8 current mask in {0, 1} (a copy)."""
        self._require_image()
        return self._mask.copy()

    @property
    def clicks(self) -> list[Click]:
        """Clicks so far, in order (row, col, label, t_s)."""
        return list(self._clicks)

    def _require_image(self) -> None:
        if self._image is None:
            raise InputError("no image set: call set_image(image, cam) first")

    def _refine(self, clicks: list[Click], scales: list[tuple[float, int]] | None = None) -> np.ndarray:
        t0 = time.perf_counter()
        adaptive = self.adaptive_scale is not None and scales is not None and len(scales) == len(clicks)
        out = refine_mask(
            self._image,
            self._prior,
            clicks,
            self.config,
            std_image=self._std,
            previous_mask=self._mask if clicks else None,
            click_scales_px=[sc for sc, _ in scales] if adaptive else None,
            click_radii_px=[r for _, r in scales] if adaptive else None,
        )
        self.last_seconds = time.perf_counter() - t0
        logger.debug("refinement with %d click(s): %.1f ms", len(clicks), 1000 * self.last_seconds)
        return out

    # ------------------------------------------------------------------ interaction
    def initial_mask(self) -> np.ndarray:
        """The initial mask: CAM -> graph cut -> post-processing (all zeros without a CAM). (H, W) uint8."""
        self._require_image()
        return self._initial.copy()

    def add_click(self, row: int, col: int, foreground: bool) -> np.ndarray:
        """Add a click and refine the mask from all clicks so far.

        Args:
            row: row in px, 0 <= row < H.
            col: column in px, 0 <= col < W.
            foreground: True for a foreground (left) click, False for background (right).

        Returns:
            (H, W) uint8 refined mask (also in :attr:`mask`).

        Raises:
            InputError: no image set, or the click lies outside the image.
        """
        self._require_image()
        h, w = self.shape
        if (
            isinstance(row, bool)
            or isinstance(col, bool)
            or not (float(row).is_integer() and float(col).is_integer())
        ):
            raise InputError(f"click position must be integer pixels, got ({row}, {col})")
        row, col = int(row), int(col)
        if not (0 <= row < h and 0 <= col < w):
            raise InputError(f"click ({row}, {col}) lies outside the image of {h} x {w} px")
        click = Click(row, col, 1 if foreground else 0, time.perf_counter() - self._t0)
        clicks = self._clicks + [click]
        scales = self._scales
        if self.adaptive_scale is not None:
            max_px = (self.spatial_scale or 1.0) * max(h, w)
            scales = scales + [
                adaptive_click_scale(
                    boundary_distance_px(self._mask, row, col),
                    self.adaptive_scale,
                    self.min_scale_px,
                    max_px,
                    self.click_radius_px,
                )
            ]
        mask = self._refine(clicks, scales)
        self._history.append(self._mask)
        self._clicks = clicks
        self._scales = scales
        self._mask = mask
        return mask.copy()

    def undo(self) -> np.ndarray:
        """Remove the last click and restore the mask before it (no-op without clicks). Returns the mask."""
        self._require_image()
        if self._clicks:
            self._clicks.pop()
            self._scales = self._scales[: len(self._clicks)]
            self._mask = self._history.pop()
        return self._mask.copy()

    def reset(self) -> np.ndarray:
        """Remove every click and return to the initial mask. Returns the mask."""
        self._require_image()
        self._clicks = []
        self._scales = []
        self._history = []
        self._mask = self._initial.copy()
        return self._mask.copy()
