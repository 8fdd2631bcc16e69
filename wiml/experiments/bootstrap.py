"""Bootstrap proposals: a segmentation model fine-tuned in the background on the labels made so far.

While a person (or the robot user) annotates, :class:`BackgroundUpdater` fine-tunes a copy of the current
model on every image tag of the training slices plus the strong labels made so far (the MSL loss,
:func:`wiml.training.mixed.mixed_loss`: tag loss on every slice, Dice + cross-entropy on the strong ones),
within a budget of seconds and steps, on a worker thread. :meth:`BackgroundUpdater.submit` returns at once
(the annotation never waits); when an update finishes, its model becomes the proposer; an update that fails
leaves the previous proposer in place and records the error. The proposal is the model's foreground
probability (:func:`wiml.interactive.proposals.probability_prior`).

Used by ``wiml wia-session`` (source ``bootstrap``) and meant for the annotator's "improve proposals" action.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import torch

from wiml.config import check_ranges
from wiml.errors import InputError

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class BootstrapConfig:
    """Settings of the background updates.

    Attributes:
        every: start an update after every ``every`` new strong labels.
        max_seconds: CPU budget of one update, s of the updating thread's CPU time (``time.thread_time``; the
            issue's limit: 60 s of CPU); wall time is longer on a loaded machine.
        max_steps: optimiser steps of one update at most.
        batch_size: slices per step (strong + tag-only).
        strong_per_batch: strong slices per step (drawn with replacement from the labels so far).
        lr: Adam learning rate.
        tag_slices: tag-only slices kept in memory for the updates (evenly spread over the tag split).
        tag_split: manifest split whose slices give the tags.
        threads: torch threads of the update (set while it runs).
        min_labels: no update before this many strong labels.
        wait: the robot waits for each update before its next label (deterministic runs: as if the person took at
            least the update's time for ``every`` labels); the annotator never waits.
        seed: seed of the batch sampling.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "every": ">= 1",
        "max_seconds": "> 0",
        "max_steps": ">= 1",
        "batch_size": ">= 1",
        "strong_per_batch": ">= 1",
        "lr": "> 0",
        "tag_slices": ">= 0",
        "threads": ">= 1",
        "min_labels": ">= 1",
    }

    every: int = 5
    max_seconds: float = 60.0
    max_steps: int = 150
    batch_size: int = 8
    strong_per_batch: int = 4
    lr: float = 1e-3
    tag_slices: int = 256
    tag_split: str = "train"
    threads: int = 1
    min_labels: int = 3
    wait: bool = True
    seed: int = 0

    def validate(self) -> BootstrapConfig:
        """Check the settings; returns ``self``.

        Raises:
            InputError: a setting is out of range.
        """
        check_ranges(self, "bootstrap")  # RANGES above, every bad value in one line
        if self.strong_per_batch > self.batch_size:
            raise InputError(
                f"bootstrap: need strong_per_batch <= batch_size, got {self.strong_per_batch}, {self.batch_size}"
            )
        return self


@dataclasses.dataclass
class UpdateRecord:
    """What one background update did.

    Attributes:
        version: the proposer's version after it (unchanged when it failed).
        n_labels: strong labels it was trained on.
        steps: optimiser steps made.
        seconds: wall time, s.
        cpu_seconds: CPU time of the updating thread, s.
        ok: whether the new model replaced the previous one.
        error: the failure's message, or "".
    """

    version: int
    n_labels: int
    steps: int
    seconds: float
    cpu_seconds: float
    ok: bool
    error: str = ""


def fine_tune(
    model: torch.nn.Module,
    strong: Sequence[tuple[np.ndarray, np.ndarray]],
    tagged: Sequence[tuple[np.ndarray, int]],
    config: BootstrapConfig,
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Fine-tune ``model`` in place on strong labels + tags with the MSL loss, within the budget.

    Args:
        model: an FPSNet (1-channel sigmoid segmentation head, tag head).
        strong: (image (C, H, W) float32, mask (H, W) uint8) pairs, at least one.
        tagged: (image (C, H, W) float32, tag 0/1) pairs for the tag loss (may be empty).
        config: :class:`BootstrapConfig` (steps, seconds, batch, learning rate).
        device: where to train.
        should_stop: polled between steps; True ends the update early.

    Returns:
        The number of optimiser steps made.

    Raises:
        InputError: no strong label, or slices of different shapes.
    """
    from wiml.training.mixed import mixed_loss

    if not strong:
        raise InputError("bootstrap: no strong label to train on")
    shapes = {im.shape for im, _ in strong} | {im.shape for im, _ in tagged}
    if len(shapes) != 1:
        raise InputError(f"bootstrap: slices of different shapes {sorted(shapes)}")
    rng = np.random.default_rng(config.seed + len(strong))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    t0 = time.thread_time()
    steps = 0
    n_tag = config.batch_size - config.strong_per_batch if tagged else 0
    while steps < config.max_steps and time.thread_time() - t0 < config.max_seconds:
        if should_stop is not None and should_stop():
            break
        s_idx = rng.integers(0, len(strong), config.strong_per_batch)
        t_idx = rng.integers(0, len(tagged), n_tag) if n_tag else []
        images = [strong[i][0] for i in s_idx] + [tagged[i][0] for i in t_idx]
        masks = [strong[i][1] for i in s_idx] + [np.zeros(strong[0][1].shape, np.uint8) for _ in t_idx]
        tags = [float(np.asarray(strong[i][1]).any()) for i in s_idx] + [float(tagged[i][1]) for i in t_idx]
        is_strong = [True] * len(s_idx) + [False] * len(t_idx)
        flips = rng.random(len(images)) < 0.5  # horizontal flips: the only augmentation
        images = [im[..., ::-1] if f else im for im, f in zip(images, flips, strict=True)]
        masks = [m[..., ::-1] if f else m for m, f in zip(masks, flips, strict=True)]
        x = torch.from_numpy(np.ascontiguousarray(np.stack(images), dtype=np.float32)).to(device)
        y = torch.from_numpy(np.ascontiguousarray(np.stack(masks)).astype(np.int64)).to(device)
        out = model(x)
        loss = mixed_loss(
            out.seg,
            out.cls,
            torch.tensor(tags, device=device),
            y,
            torch.tensor(is_strong, device=device),
        ).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
    model.eval()
    return steps


class BackgroundUpdater:
    """Holds the current proposer model and fine-tunes a copy of it on a worker thread.

    Example:
        >>> updater = BackgroundUpdater(model, tagged, BootstrapConfig())
        >>> updater.submit(strong_so_far)          # returns at once; False when an update is running
        >>> model, version = updater.current()     # the newest model that finished without error
        >>> updater.wait()                         # tests / the robot's deterministic mode only

    Args:
        model: the starting model (e.g. the weak model; version 0). It is never modified.
        tagged: (image (C, H, W), tag) slices for the tag loss.
        config: :class:`BootstrapConfig`.
        device: where updates train.
        train_fn: the update itself (default :func:`fine_tune`; tests inject failing or blocking ones).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tagged: Sequence[tuple[np.ndarray, int]],
        config: BootstrapConfig | None = None,
        device: torch.device | str = "cpu",
        train_fn: Callable[..., int] | None = None,
    ) -> None:
        self.config = (config or BootstrapConfig()).validate()
        self.device = device
        self._model = model
        self._version = 0
        self._tagged = list(tagged)
        self._train_fn = train_fn or fine_tune
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.updates: list[UpdateRecord] = []

    def current(self) -> tuple[torch.nn.Module, int]:
        """(the newest good model, its version); version 0 is the starting model."""
        with self._lock:
            return self._model, self._version

    @property
    def busy(self) -> bool:
        """True while an update runs."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, strong: Sequence[tuple[np.ndarray, np.ndarray]]) -> bool:
        """Start an update on ``strong`` (copied) unless one is running; returns at once.

        Returns:
            True when an update was started.
        """
        if self.busy:
            return False
        labels = [(np.array(im, np.float32), np.array(m, np.uint8)) for im, m in strong]
        base, version = self.current()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(base, version, labels), name="wiml-bootstrap", daemon=True
        )
        self._thread.start()
        return True

    def _run(self, base: torch.nn.Module, version: int, labels: list) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        steps = 0
        previous_threads = torch.get_num_threads()
        try:
            torch.set_num_threads(self.config.threads)
            candidate = copy.deepcopy(base)
            steps = self._train_fn(
                candidate, labels, self._tagged, self.config, self.device, self._stop.is_set
            )
            with self._lock:
                self._model, self._version = candidate, version + 1
            record = UpdateRecord(
                version + 1, len(labels), steps, time.perf_counter() - t0, time.thread_time() - c0, True
            )
        except Exception as err:  # noqa: BLE001 - a failed update must never stop the annotation
            logger.warning("bootstrap update failed, previous proposer kept: %s", err)
            record = UpdateRecord(
                version,
                len(labels),
                steps,
                time.perf_counter() - t0,
                time.thread_time() - c0,
                False,
                f"{type(err).__name__}: {err}",
            )
        finally:
            torch.set_num_threads(previous_threads)
        self.updates.append(record)
        logger.info("bootstrap update: %s", record)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the running update ends (robot runs and tests only). Returns False on timeout."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Ask a running update to stop after its current step and wait for it."""
        self._stop.set()
        self.wait()
