"""The annotation of one slice: proposal, masks, clicks, undo/redo history, events and times (Qt-free).

:class:`SliceAnnotation` is what :class:`wiml.annotator.controller.AnnotationController` keeps per slice, so that
going back to a slice of a volume brings back its clicks, its history and its timer. Every change (Segment,
a click, Clear, a propagated proposal, a loaded label, ...) is one step of the history, so each can be undone
and redone; the event list keeps every action with its time, also the undone ones.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from wiml.evaluation.metrics import dice_score, iou_score
from wiml.interactive.session import Click

#: a pause between two actions longer than this (s) counts only this much towards the active time.
IDLE_GAP_S = 30.0
#: undo steps kept per slice (each holds one mask).
MAX_HISTORY = 200


@dataclasses.dataclass(frozen=True)
class SliceState:
    """What one step of a slice's history restores (arrays are never modified in place).

    Attributes:
        session: the refinement session the clicks belong to (None before Segment / a proposal).
        cam: (H, W) float32 CAM in [0, 1] or None; initial: (H, W) uint8 proposal or None.
        mask: (H, W) uint8 current mask or None; clicks: the clicks that made it from ``initial``.
        dice_steps, iou_steps: Dice / IoU of the proposal, then after each click.
        proposal: what ``initial`` came from: cam, none, propagated, saved, recovered.
        painted: (H, W) int8 brush edits since the proposal, 1 painted, -1 erased, 0 none (or None): they
            override the refinement, so clicks after a stroke keep it.
    """

    session: object | None = None
    cam: np.ndarray | None = None
    initial: np.ndarray | None = None
    mask: np.ndarray | None = None
    clicks: tuple[Click, ...] = ()
    dice_steps: tuple[float, ...] = ()
    iou_steps: tuple[float, ...] = ()
    proposal: str | None = None
    painted: np.ndarray | None = None


def apply_paint(mask: np.ndarray, painted: np.ndarray | None) -> np.ndarray:
    """``mask`` (H, W) uint8 with the brush edits ``painted`` (1 painted, -1 erased) applied (a copy)."""
    out = np.asarray(mask, np.uint8).copy()
    if painted is not None:
        out[painted > 0] = 1
        out[painted < 0] = 0
    return out


class SliceAnnotation:
    """State of one slice's annotation.

    Attributes:
        state: the current :class:`SliceState`.
        undo_stack, redo_stack: (action, state before, state after) steps.
        events: every action ``{"action", "t_s", ...}`` in order, including undone ones.
        dirty: changed since the last save (or since it was loaded).
        saved: a saved label of this slice exists (finished slices are marked on the slider).
        tag: image tag of the slice (1 present, 0 absent) or None; tag_source: who set it.
    """

    def __init__(self, idle_gap_s: float = IDLE_GAP_S) -> None:
        self.state = SliceState()
        self.undo_stack: list[tuple[str, SliceState, SliceState]] = []
        self.redo_stack: list[tuple[str, SliceState, SliceState]] = []
        self.events: list[dict] = []
        self.dirty = False
        self.saved = False
        self.tag: int | None = None
        self.tag_source: str | None = None
        self.idle_gap_s = float(idle_gap_s)
        self._shown_s = 0.0
        self._shown_at: float | None = None
        self._active_s = 0.0
        self._last_action_at: float | None = None

    # ------------------------------------------------------------------ state access
    @property
    def session(self):
        return self.state.session

    @property
    def cam(self) -> np.ndarray | None:
        return self.state.cam

    @property
    def initial(self) -> np.ndarray | None:
        return self.state.initial

    @property
    def mask(self) -> np.ndarray | None:
        return self.state.mask

    @property
    def clicks(self) -> list[Click]:
        return list(self.state.clicks)

    @property
    def proposal(self) -> str | None:
        return self.state.proposal

    # ------------------------------------------------------------------ time
    def show(self, now: float) -> None:
        """The slice is shown from ``now`` on (its timers run)."""
        if self._shown_at is None:
            self._shown_at = now
            self._last_action_at = now

    def hide(self, now: float) -> None:
        """Another slice is shown from ``now`` on (its timers stop)."""
        if self._shown_at is not None:
            self._shown_s += now - self._shown_at
            self._shown_at = None
            self._touch(now)
            self._last_action_at = None

    def elapsed(self, now: float) -> float:
        """Seconds this slice has been shown in total."""
        return self._shown_s + (now - self._shown_at if self._shown_at is not None else 0.0)

    def active(self, now: float) -> float:
        """Seconds of work on this slice: the gaps between its actions (and since it was shown), each capped at
        ``idle_gap_s``, so a coffee break does not count."""
        extra = 0.0
        if self._last_action_at is not None:
            extra = min(max(now - self._last_action_at, 0.0), self.idle_gap_s)
        return self._active_s + extra

    def _touch(self, now: float) -> float:
        if self._last_action_at is not None:
            self._active_s += min(max(now - self._last_action_at, 0.0), self.idle_gap_s)
        self._last_action_at = now if self._shown_at is not None else None
        return self._active_s

    def log(self, action: str, now: float, **fields) -> float:
        """Record an action at ``now``; returns its time in active seconds."""
        t_s = round(self._touch(now), 3)
        self.events.append({"action": action, "t_s": t_s, **fields})
        return t_s

    # ------------------------------------------------------------------ history
    def apply(self, action: str, new: SliceState) -> None:
        """Make ``new`` the current state as an undoable step named ``action``."""
        self.undo_stack.append((action, self.state, new))
        del self.undo_stack[:-MAX_HISTORY]
        self.redo_stack.clear()
        self.state = new
        self.dirty = True

    def undo(self) -> tuple[str, SliceState] | None:
        """Step back; returns (action undone, state now current) or None when there is nothing to undo."""
        if not self.undo_stack:
            return None
        action, before, after = self.undo_stack.pop()
        self.redo_stack.append((action, before, after))
        self.state = before
        self.dirty = True
        return action, before

    def redo(self) -> tuple[str, SliceState] | None:
        """Step forward again; returns (action redone, state now current) or None."""
        if not self.redo_stack:
            return None
        action, before, after = self.redo_stack.pop()
        self.undo_stack.append((action, before, after))
        self.state = after
        self.dirty = True
        return action, after

    # ------------------------------------------------------------------ new states
    @staticmethod
    def _steps(mask: np.ndarray, gt: np.ndarray | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if gt is None or mask is None:
            return (), ()
        return (float(dice_score(mask, gt)),), (float(iou_score(mask, gt)),)

    def started(
        self,
        session,
        cam: np.ndarray | None,
        initial: np.ndarray,
        gt: np.ndarray | None,
        proposal: str,
        painted: np.ndarray | None = None,
    ) -> SliceState:
        """The state of a fresh start from a proposal (Segment, propagation, a loaded label): no clicks."""
        initial = np.asarray(initial, np.uint8).copy()
        mask = apply_paint(initial, painted)
        dice, iou = self._steps(mask, gt)
        return SliceState(session, cam, initial, mask, (), dice, iou, proposal, painted)

    def after_click(self, click: Click, mask: np.ndarray, gt: np.ndarray | None) -> SliceState:
        """The state after a click that gave ``mask``."""
        s = self.state
        mask = apply_paint(mask, s.painted)
        dice, iou = self._steps(mask, gt)
        return dataclasses.replace(
            s,
            mask=mask,
            clicks=s.clicks + (click,),
            dice_steps=s.dice_steps + dice,
            iou_steps=s.iou_steps + iou,
        )

    def after_clear(self) -> SliceState:
        """The state after Clear: the proposal again, no clicks and no brush edits."""
        s = self.state
        return dataclasses.replace(
            s, mask=s.initial, clicks=(), dice_steps=s.dice_steps[:1], iou_steps=s.iou_steps[:1], painted=None
        )

    def after_paint(self, stamp: np.ndarray, erase: bool, gt: np.ndarray | None) -> SliceState:
        """The state after a brush (or eraser) stroke covering ``stamp`` (H, W) bool."""
        s = self.state
        shape = stamp.shape
        painted = np.zeros(shape, np.int8) if s.painted is None else s.painted.copy()
        painted[stamp] = -1 if erase else 1
        base = s.mask if s.mask is not None else np.zeros(shape, np.uint8)
        mask = apply_paint(base, painted)
        dice, iou = self._steps(mask, gt)
        initial = s.initial if s.initial is not None else np.zeros(shape, np.uint8)
        return dataclasses.replace(
            s,
            initial=initial,
            mask=mask,
            painted=painted,
            dice_steps=s.dice_steps + dice,
            iou_steps=s.iou_steps + iou,
            proposal=s.proposal or "none",
        )

    # ------------------------------------------------------------------ record
    def record(self, now: float) -> dict:
        """The interaction fields of the recording (:class:`wiml.data.wia_result.Recording`)."""
        s = self.state
        return {
            "clicks": [c.to_dict() for c in s.clicks],
            "dice_per_step": [round(d, 6) for d in s.dice_steps],
            "iou_per_step": [round(d, 6) for d in s.iou_steps],
            "initial_dice": s.dice_steps[0] if s.dice_steps else None,
            "initial_iou": s.iou_steps[0] if s.iou_steps else None,
            "final_dice": s.dice_steps[-1] if s.dice_steps else None,
            "final_iou": s.iou_steps[-1] if s.iou_steps else None,
            "foreground_px": int(s.mask.sum()) if s.mask is not None else 0,
            "total_time_s": round(self.elapsed(now), 3),
            "active_time_s": round(self.active(now), 3),
            "events": list(self.events),
            "proposal": s.proposal,
        }
