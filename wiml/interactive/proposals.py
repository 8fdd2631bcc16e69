"""Proposals: the mask an annotation starts from, as a foreground probability for the refinement.

One engine serves ``wiml cam``, ``wiml wia-sim``, ``wiml wia-session`` and the annotator: every proposal is a
(H, W) foreground probability (a *prior*) that :class:`wiml.interactive.session.RefinementSession` turns into
the initial mask with the same graph cut and post-processing as every later click
(:func:`initial_mask`). Sources (names used on the command line and in the session outputs):

* ``none``: no proposal; the constant ``empty_prior`` (the mask is empty until the first click).
* ``cam`` / ``cam+``: a weak model's Grad-CAM, optionally calibrated (``cam_threshold``) and made
  appearance-aware (:func:`cam_prior`; :mod:`wiml.interactive.appearance`, after GrabCut).
* ``box``: a bounding box of the target (a drag in the GUI): appearance models of the inside against a ring
  outside it, re-fitted GrabCut-style (Rother et al., SIGGRAPH 2004), zero outside the box (:func:`box_prior`).
* ``propagate``: the finished neighbouring slice's mask as a soft prior, optionally fused with the CAM
  (:func:`mask_to_prior`).
* ``bootstrap``: a segmentation model trained on the labels made so far; its foreground probability is the
  prior (:func:`probability_prior`; the model and its background updates live in
  :mod:`wiml.experiments.bootstrap`).

Everything here is NumPy only (no Qt, no torch), so the GUI and the robot runners call the same functions.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from scipy import ndimage

from wiml.config import check_ranges
from wiml.errors import InputError
from wiml.interactive.appearance import AppearanceConfig, appearance_posterior
from wiml.interactive.postprocess import body_mask

#: proposal sources of ``wiml wia-session`` (in this order when all are run).
PROPOSAL_SOURCES = ("none", "cam", "cam+", "box", "propagate", "bootstrap")


@dataclasses.dataclass
class ProposalConfig:
    """Parameters of the proposals that are not refinement parameters.

    Attributes:
        mask_inside: prior probability inside a propagated mask (:func:`mask_to_prior`).
        mask_outside: prior probability outside it.
        softness_px: width of the soft border of a propagated mask, px.
        cam_weight: weight of the CAM fused into a propagated prior (0 = the mask alone).
        box_ring_px: width of the ring outside a box whose pixels model the background, px.
        box_iterations: GrabCut-style re-estimation rounds of a box proposal.
        box_floor: spatial prior inside the box at its border (rises to 1 at the centre).
        probability_floor: a model probability map is clipped to ``[floor, 1 - floor]``.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "mask_inside": "(0.5, 1]",
        "mask_outside": "[0, 0.5)",
        "softness_px": "> 0",
        "cam_weight": "[0, 1]",
        "box_ring_px": ">= 1",
        "box_iterations": ">= 0",
        "box_floor": "(0, 1)",
        "probability_floor": "[0, 0.5)",
    }

    mask_inside: float = 0.9
    mask_outside: float = 0.1
    softness_px: float = 2.0
    cam_weight: float = 0.25
    box_ring_px: int = 8
    box_iterations: int = 2
    box_floor: float = 0.5
    probability_floor: float = 0.02

    def validate(self) -> ProposalConfig:
        """Check the parameters; returns ``self``.

        Raises:
            InputError: a parameter is out of range.
        """
        if not 0.0 <= self.mask_outside < 0.5 < self.mask_inside <= 1.0:
            raise InputError(
                f"need 0 <= mask_outside < 0.5 < mask_inside <= 1, got {self.mask_outside}, {self.mask_inside}"
            )
        check_ranges(self, "proposal")
        return self


def _grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float32)
    if image.ndim == 3:
        return image[0]
    if image.ndim != 2:
        raise InputError(f"image must be (H, W) or (C, H, W), got shape {image.shape}")
    return image


def cam_prior(
    image: np.ndarray,
    cam: np.ndarray,
    cam_threshold: float | None = None,
    appearance: AppearanceConfig | None = None,
    region: np.ndarray | None = None,
    lam: float | None = None,
    sigma: float | None = None,
) -> np.ndarray:
    """The prior of a CAM proposal: calibration, then (optionally) the appearance-aware prior.

    Args:
        image: (H, W) float32 in [0, 1] the refinement sees ((C, H, W): channel 0).
        cam: (H, W) float CAM in [0, 1].
        cam_threshold: CAM value that counts as probability 0.5 (``clip(cam * 0.5 / cam_threshold, 0, 1)``);
            None = the CAM is the probability (the original).
        appearance: parameters of :func:`wiml.interactive.appearance.appearance_prior`; None = the CAM alone.
        region: (H, W) bool body / brain for the appearance models; None =
            :func:`wiml.interactive.postprocess.body_mask` of ``image``.
        lam: graph-cut weight for GrabCut-style appearance iterations (``RefinementConfig.lam``).
        sigma: graph-cut intensity scale for them (``RefinementConfig.sigma``).

    Returns:
        (H, W) float32 foreground probability in [0, 1].

    Raises:
        InputError: the shapes differ or the CAM leaves [0, 1].
    """
    grey = _grey(image)
    cam = np.asarray(cam, np.float32)
    if cam.shape != grey.shape:
        raise InputError(f"CAM shape {cam.shape} does not match the image {grey.shape}")
    if not np.isfinite(cam).all() or cam.min() < -1e-3 or cam.max() > 1 + 1e-3:
        raise InputError("CAM values must be finite and in [0, 1]")
    prior = np.clip(cam, 0.0, 1.0).astype(np.float32)
    if cam_threshold is not None:
        prior = np.clip(prior * (0.5 / cam_threshold), 0.0, 1.0).astype(np.float32)
    if appearance is not None:
        if region is None:
            region = body_mask(grey)
        prior = appearance.prior(grey, prior, region, lam, sigma)
    return prior


def mask_to_prior(
    mask: np.ndarray, cam: np.ndarray | None = None, config: ProposalConfig | None = None
) -> np.ndarray:
    """The prior of a propagated proposal: a finished neighbour's mask with a soft border, fused with the CAM.

    Args:
        mask: (H, W) binary proposal (e.g. the finished neighbouring slice's strong label).
        cam: optional (H, W) float CAM in [0, 1] of the slice.
        config: :class:`ProposalConfig` (``mask_inside``, ``mask_outside``, ``softness_px``, ``cam_weight``).

    Returns:
        (H, W) float32 in [0, 1]: ``mask_inside`` inside, ``mask_outside`` outside, a signed-distance sigmoid of
        width ``softness_px`` between, mixed ``(1 - cam_weight) : cam_weight`` with the CAM.
    """
    config = config or ProposalConfig()
    m = np.asarray(mask) > 0
    if m.ndim != 2:
        raise InputError(f"mask must be (H, W), got shape {m.shape}")
    inside = ndimage.distance_transform_edt(m)
    outside = ndimage.distance_transform_edt(~m)
    signed = np.where(m, inside - 0.5, -(outside - 0.5))
    hi, lo = config.mask_inside, config.mask_outside
    prior = lo + (hi - lo) / (1.0 + np.exp(-signed / config.softness_px))
    if cam is not None:
        cam = np.asarray(cam, np.float32)
        if cam.shape != m.shape:
            raise InputError(f"CAM shape {cam.shape} does not match the mask {m.shape}")
        prior = (1.0 - config.cam_weight) * prior + config.cam_weight * np.clip(cam, 0.0, 1.0)
    return np.clip(prior, 0.0, 1.0).astype(np.float32)


def check_box(box: tuple[int, int, int, int], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box ``(row0, col0, row1, col1)`` (inclusive corners, px) clipped to the image and ordered.

    Raises:
        InputError: the box lies wholly outside the image or is not four numbers.
    """
    try:
        r0, c0, r1, c1 = (int(round(float(v))) for v in box)
    except (TypeError, ValueError) as err:
        raise InputError(f"a box is (row0, col0, row1, col1) in px, got {box!r}") from err
    r0, r1 = sorted((r0, r1))
    c0, c1 = sorted((c0, c1))
    h, w = shape
    if r1 < 0 or c1 < 0 or r0 >= h or c0 >= w:
        raise InputError(f"box {box} lies outside the image of {h} x {w} px")
    return max(r0, 0), max(c0, 0), min(r1, h - 1), min(c1, w - 1)


def box_prior(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    config: ProposalConfig | None = None,
    *,
    lam: float,
    sigma: float,
) -> np.ndarray:
    """The prior of a box proposal, GrabCut-style (Rother, Kolmogorov & Blake, SIGGRAPH 2004).

    Intensity histograms of the box's inside (foreground) and of a ring of ``box_ring_px`` around it
    (background) are combined by Bayes' rule with a spatial prior that is ``box_floor`` at the box's border and
    rises to 1 at its centre; ``box_iterations`` rounds re-fit both models from a graph cut of the result. Zero
    outside the box: the target is inside it.

    Args:
        image: (H, W) float32 in [0, 1] ((C, H, W): channel 0).
        box: (row0, col0, row1, col1), inclusive corners in px (see :func:`check_box`).
        config: :class:`ProposalConfig`.
        lam: graph-cut pairwise weight of the re-fit rounds (the refinement's).
        sigma: graph-cut intensity scale of those rounds.

    Returns:
        (H, W) float32 foreground probability in [0, 1].

    Raises:
        InputError: a malformed box or image.
    """
    from wiml.interactive.graphcut import graph_cut

    config = (config or ProposalConfig()).validate()
    grey = np.clip(_grey(image), 0.0, 1.0)
    r0, c0, r1, c1 = check_box(box, grey.shape)
    inside = np.zeros(grey.shape, bool)
    inside[r0 : r1 + 1, c0 : c1 + 1] = True
    ring = ndimage.binary_dilation(inside, iterations=config.box_ring_px) & ~inside
    if not ring.any():  # the box is the whole image: the border pixels model the background
        ring = inside & ~ndimage.binary_erosion(inside, iterations=1, border_value=0)
    # spatial prior: box_floor at the border of the box, 1 at its centre
    depth = ndimage.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
    depth = depth / max(float(depth.max()), 1.0)
    spatial = np.where(inside, config.box_floor + (1.0 - config.box_floor) * depth, 0.0)
    spatial = np.clip(spatial, 0.0, 1.0 - 1e-4).astype(np.float32)
    prob = appearance_posterior(grey, spatial, inside, ring)
    for _ in range(config.box_iterations):
        mask = graph_cut(grey, prob, lam=lam, sigma=sigma).astype(bool) & inside
        rest = (inside & ~mask) | ring
        if mask.sum() < 10 or rest.sum() < 10:
            break
        prob = appearance_posterior(grey, spatial, mask, rest)
    return np.where(inside, prob, 0.0).astype(np.float32)


def probability_prior(probability: np.ndarray, config: ProposalConfig | None = None) -> np.ndarray:
    """The prior of a model proposal (bootstrap): the model's foreground probability, clipped away from 0/1.

    Args:
        probability: (H, W) float in [0, 1], e.g. an MSL model's sigmoid output at the slice's resolution.
        config: :class:`ProposalConfig` (``probability_floor``).

    Returns:
        (H, W) float32 in ``[floor, 1 - floor]``.

    Raises:
        InputError: not 2-D or not finite.
    """
    config = config or ProposalConfig()
    p = np.asarray(probability, np.float32)
    if p.ndim != 2 or not np.isfinite(p).all():
        raise InputError(f"a probability map must be a finite (H, W) array, got shape {p.shape}")
    f = config.probability_floor
    return np.clip(p, f, 1.0 - f).astype(np.float32)


def target_box(
    gt: np.ndarray, jitter_px: float = 0.0, rng: np.random.Generator | None = None
) -> tuple[int, int, int, int] | None:
    """The robot user's box: the bounding box of the ground truth, each side moved by up to ``jitter_px``.

    Args:
        gt: (H, W) ground-truth mask.
        jitter_px: largest move of each side, px (uniform integer in ``[-jitter_px, jitter_px]``).
        rng: random generator for the jitter.

    Returns:
        (row0, col0, row1, col1) clipped to the image, or None for an empty mask.
    """
    gt = np.asarray(gt) > 0
    if not gt.any():
        return None
    rows = np.flatnonzero(gt.any(axis=1))
    cols = np.flatnonzero(gt.any(axis=0))
    box = [int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])]
    j = int(np.floor(jitter_px))
    if j > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        box = [v + int(d) for v, d in zip(box, rng.integers(-j, j + 1, size=4), strict=True)]
    return check_box(tuple(box), gt.shape)
