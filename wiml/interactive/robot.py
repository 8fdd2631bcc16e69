"""Robot user: the simulated annotator used to measure interactive segmentation.

The protocol is the one of the interactive-segmentation literature (Xu et al., "Deep interactive object
selection", CVPR 2016; Sofiiuk et al., "Reviving iterative training with mask guidance", 2021): the next
click goes to the interior point of the largest error region — the pixel farthest from the region's border
— as a foreground click if the region was missed (false negative) and as a background click if it is
spurious (false positive). NoC@t is the number of clicks until Dice >= t, capped at 20; a slice that never
gets there counts 20.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from scipy import ndimage

from wiml.errors import InputError
from wiml.evaluation.metrics import dice_score
from wiml.interactive.session import Click, RefinementSession

logger = logging.getLogger(__name__)

NOC_THRESHOLDS = (0.80, 0.85, 0.90)
MAX_CLICKS = 20


def next_click(pred: np.ndarray, gt: np.ndarray) -> Click | None:
    """Where the robot user clicks next.

    Error regions are the 8-connected components of the false negatives (``gt & ~pred``) and of the false
    positives (``pred & ~gt``). In the largest one (ties: false negatives first, then the first in scan order)
    the click goes to the pixel with the largest Euclidean distance to the region's border (the image border
    counts as border), found with :func:`scipy.ndimage.distance_transform_edt`.

    Args:
        pred: (H, W) current mask, non-zero = foreground.
        gt: (H, W) ground-truth mask.

    Returns:
        The click (row, col in px; label 1 for a missed region, 0 for a spurious one), or None when the mask is
        already perfect.

    Raises:
        InputError: the shapes differ or are not 2-D.
    """
    pred = np.asarray(pred) > 0
    gt = np.asarray(gt) > 0
    if pred.shape != gt.shape or pred.ndim != 2:
        raise InputError(f"pred {pred.shape} and gt {gt.shape} must be 2-D masks of the same shape")
    best: tuple[int, int, np.ndarray] | None = None  # (size, label, region)
    structure = np.ones((3, 3), bool)
    for label, error in ((1, gt & ~pred), (0, pred & ~gt)):
        if not error.any():
            continue
        comps, n = ndimage.label(error, structure=structure)
        sizes = np.bincount(comps.ravel())
        sizes[0] = 0
        k = int(sizes.argmax())
        if best is None or sizes[k] > best[0]:
            best = (int(sizes[k]), label, comps == k)
    if best is None:
        return None
    _, label, region = best
    dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Click(int(row), int(col), label)


def jitter_click(click: Click, jitter_px: float, shape: tuple[int, int], rng: np.random.Generator) -> Click:
    """Move a click by a random offset of at most ``jitter_px`` (uniform in a disk), clipped to the image.

    Robot users click more precisely than people; jitter measures how much that flatters the results.
    """
    if jitter_px <= 0:
        return click
    radius = jitter_px * np.sqrt(rng.uniform())
    angle = rng.uniform(0.0, 2 * np.pi)
    row = int(np.clip(round(click.row + radius * np.sin(angle)), 0, shape[0] - 1))
    col = int(np.clip(round(click.col + radius * np.cos(angle)), 0, shape[1] - 1))
    return dataclasses.replace(click, row=row, col=col)


def clicks_to_reach(dice_per_step: list[float], threshold: float, max_clicks: int = MAX_CLICKS) -> int:
    """NoC@threshold: clicks until Dice >= threshold (0 when the initial mask is good enough), capped.

    Args:
        dice_per_step: Dice of the initial mask, then after click 1, 2, ...
        threshold: Dice target, e.g. 0.85.
        max_clicks: the cap (20): a slice that never reaches the target counts ``max_clicks``.
    """
    for k, d in enumerate(dice_per_step[: max_clicks + 1]):
        if d >= threshold:
            return k
    return max_clicks


@dataclasses.dataclass
class RobotResult:
    """Outcome of one robot-user run on one slice.

    Attributes:
        initial_dice: Dice of the initial mask.
        dice_per_step: Dice after each click (index 0 = after click 1).
        clicks: the clicks made, in order.
        seconds_per_click: wall time of each refinement, s.
        mask: (H, W) uint8 final mask.
        initial_mask: (H, W) uint8 initial mask.
    """

    initial_dice: float
    dice_per_step: list[float]
    clicks: list[Click]
    seconds_per_click: list[float]
    mask: np.ndarray
    initial_mask: np.ndarray

    @property
    def final_dice(self) -> float:
        return self.dice_per_step[-1] if self.dice_per_step else self.initial_dice

    def dice_after(self, n_clicks: int) -> float:
        """Dice after ``n_clicks`` clicks; a run that stopped earlier keeps its last Dice."""
        steps = [self.initial_dice] + self.dice_per_step
        return steps[min(n_clicks, len(steps) - 1)]

    def noc(self, threshold: float, max_clicks: int = MAX_CLICKS) -> int:
        """NoC@threshold (capped at ``max_clicks``)."""
        return clicks_to_reach([self.initial_dice] + self.dice_per_step, threshold, max_clicks)


def simulate(
    session: RefinementSession,
    gt: np.ndarray,
    max_clicks: int = MAX_CLICKS,
    target_dice: float | None = max(NOC_THRESHOLDS),
    jitter_px: float = 0.0,
    rng: np.random.Generator | None = None,
) -> RobotResult:
    """Let the robot user refine the session's current image until the Dice target or ``max_clicks``.

    The session must hold the image (``set_image``); the run starts from its initial mask (after a reset).

    Args:
        session: a session with the image (and CAM) set.
        gt: (H, W) ground-truth mask.
        max_clicks: at most this many clicks (20).
        target_dice: stop once Dice >= this (None: always ``max_clicks`` clicks unless the mask is perfect).
        jitter_px: move each click by up to this many pixels (0 = exact robot).
        rng: random generator for the jitter (seeded by the caller for reproducibility).

    Returns:
        :class:`RobotResult`.

    Raises:
        InputError: ``gt`` does not match the image.
    """
    gt = np.asarray(gt) > 0
    if gt.shape != session.shape:
        raise InputError(f"ground truth {gt.shape} does not match the image {session.shape}")
    rng = rng if rng is not None else np.random.default_rng(0)
    mask = session.reset()
    initial = mask.copy()
    initial_dice = dice_score(mask, gt)
    dice_steps: list[float] = []
    seconds: list[float] = []
    dice = initial_dice
    for _ in range(max_clicks):
        if target_dice is not None and dice >= target_dice:
            break
        click = next_click(mask, gt)
        if click is None:
            break
        click = jitter_click(click, jitter_px, gt.shape, rng)
        mask = session.add_click(click.row, click.col, foreground=bool(click.label))
        seconds.append(session.last_seconds)
        dice = dice_score(mask, gt)
        dice_steps.append(dice)
    return RobotResult(initial_dice, dice_steps, session.clicks, seconds, mask, initial)
