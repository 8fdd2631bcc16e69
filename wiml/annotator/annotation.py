"""The annotation of one slice: refinement session, CAM, masks, clicks with times, Dice/IoU per step (Qt-free).

:class:`SliceAnnotation` is what :class:`wiml.annotator.controller.AnnotationController` keeps per slice, so that going
back to a slice of a volume brings back its clicks, its undo history and its timer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from wiml.evaluation.metrics import dice_score, iou_score
from wiml.interactive.session import Click


@dataclasses.dataclass
class SliceAnnotation:
    """State of one slice's annotation.

    Attributes:
        session: the refinement session (None until Segment or the first click).
        cam: (H, W) float32 CAM in [0, 1], or None (no weak model).
        initial: (H, W) uint8 initial mask, or None before Segment.
        mask: (H, W) uint8 current mask, or None before Segment.
        clicks: clicks so far, ``t_s`` in seconds of active annotation time on this slice.
        dice_steps, iou_steps: Dice / IoU against the ground truth of the initial mask, then after each click.
        active_s: annotation time on this slice before it was last shown, s.
        shown_at: clock reading when the slice was last shown (None while another slice is shown).
        dirty: changed since the last save.
    """

    session: object | None = None
    cam: np.ndarray | None = None
    initial: np.ndarray | None = None
    mask: np.ndarray | None = None
    clicks: list[Click] = dataclasses.field(default_factory=list)
    dice_steps: list[float] = dataclasses.field(default_factory=list)
    iou_steps: list[float] = dataclasses.field(default_factory=list)
    active_s: float = 0.0
    shown_at: float | None = None
    dirty: bool = False

    def show(self, now: float) -> None:
        """The slice is shown from ``now`` on (its timer runs)."""
        if self.shown_at is None:
            self.shown_at = now

    def hide(self, now: float) -> None:
        """Another slice is shown from ``now`` on (its timer stops)."""
        if self.shown_at is not None:
            self.active_s += now - self.shown_at
            self.shown_at = None

    def elapsed(self, now: float) -> float:
        """Seconds this slice has been shown in total."""
        return self.active_s + (now - self.shown_at if self.shown_at is not None else 0.0)

    def start(self, session, cam: np.ndarray | None, initial: np.ndarray, gt: np.ndarray | None) -> None:
        """Begin (or restart) with a fresh session and its initial mask; clicks are dropped."""
        self.session = session
        self.cam = cam
        self.initial = np.asarray(initial, np.uint8).copy()
        self.mask = self.initial.copy()
        self.clicks = []
        self.dice_steps, self.iou_steps = [], []
        self._record(gt)
        self.dirty = True

    def clicked(self, click: Click, mask: np.ndarray, gt: np.ndarray | None) -> None:
        """Record a click and the refined mask it gave."""
        self.mask = np.asarray(mask, np.uint8).copy()
        self.clicks.append(click)
        self._record(gt)
        self.dirty = True

    def undone(self, mask: np.ndarray) -> None:
        """Drop the last click; ``mask`` is the mask before it."""
        self.mask = np.asarray(mask, np.uint8).copy()
        self.clicks.pop()
        self.dice_steps = self.dice_steps[:-1]
        self.iou_steps = self.iou_steps[:-1]
        self.dirty = True

    def cleared(self, mask: np.ndarray) -> None:
        """Drop every click; ``mask`` is the initial mask."""
        self.mask = np.asarray(mask, np.uint8).copy()
        self.clicks = []
        self.dice_steps = self.dice_steps[:1]
        self.iou_steps = self.iou_steps[:1]
        self.dirty = True

    def _record(self, gt: np.ndarray | None) -> None:
        if gt is not None and self.mask is not None:
            self.dice_steps.append(float(dice_score(self.mask, gt)))
            self.iou_steps.append(float(iou_score(self.mask, gt)))

    def record(self, now: float) -> dict:
        """The interaction fields of the recording (docs/architecture.md, "WIA results")."""
        return {
            "clicks": [c.to_dict() for c in self.clicks],
            "dice_per_step": [round(d, 6) for d in self.dice_steps],
            "iou_per_step": [round(d, 6) for d in self.iou_steps],
            "initial_dice": self.dice_steps[0] if self.dice_steps else None,
            "initial_iou": self.iou_steps[0] if self.iou_steps else None,
            "final_dice": self.dice_steps[-1] if self.dice_steps else None,
            "final_iou": self.iou_steps[-1] if self.iou_steps else None,
            "foreground_px": int(self.mask.sum()) if self.mask is not None else 0,
            "total_time_s": round(self.elapsed(now), 3),
        }
