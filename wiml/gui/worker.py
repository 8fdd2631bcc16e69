"""Run controller actions on one worker ``QThread`` so the window never freezes.

Actions (open, segment, click, undo, clear, save, load checkpoint) are queued to a single worker object living
in its own thread. Qt delivers queued calls in order, so a click given while the previous refinement is still
running is applied after it, and Save always sees every click made before it. Each finished action emits
``finished(job_id, result)``; an action that raises emits ``failed(job_id, message)`` (a :class:`WimlError`
as its own message, anything else with its type).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from PyQt5.QtCore import QEventLoop, QObject, QThread, QTimer, pyqtSignal, pyqtSlot

from wiml.errors import WimlError

logger = logging.getLogger(__name__)


class _Runner(QObject):
    finished = pyqtSignal(int, object)
    failed = pyqtSignal(int, str)

    @pyqtSlot(int, object)
    def run(self, job_id: int, fn: Callable[[], object]) -> None:
        try:
            result = fn()
        except WimlError as exc:
            self.failed.emit(job_id, str(exc))
        except Exception as exc:  # noqa: BLE001 - a worker must never die silently; the UI shows the error
            logger.error("action failed:\n%s", traceback.format_exc())
            self.failed.emit(job_id, f"{exc.__class__.__name__}: {exc}")
        else:
            self.finished.emit(job_id, result)


class ActionWorker(QObject):
    """Queue of callables executed in order on a dedicated thread.

    Signals:
        finished(int job_id, object result): an action returned ``result`` (emitted in the GUI thread).
        failed(int job_id, str message): an action raised.
        busy_changed(bool): True while at least one action is queued or running.
    """

    finished = pyqtSignal(int, object)
    failed = pyqtSignal(int, str)
    busy_changed = pyqtSignal(bool)
    _submit = pyqtSignal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("wiml-refinement")
        self._runner = _Runner()
        self._runner.moveToThread(self._thread)
        self._submit.connect(self._runner.run)
        self._runner.finished.connect(self._on_finished)
        self._runner.failed.connect(self._on_failed)
        self._pending = 0
        self._next_id = 0
        self._thread.start()

    @property
    def pending(self) -> int:
        """Actions queued or running."""
        return self._pending

    def submit(self, fn: Callable[[], object]) -> int:
        """Queue ``fn`` (called with no arguments on the worker thread). Returns its job id."""
        self._next_id += 1
        self._pending += 1
        if self._pending == 1:
            self.busy_changed.emit(True)
        self._submit.emit(self._next_id, fn)
        return self._next_id

    def _done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self.busy_changed.emit(False)

    @pyqtSlot(int, object)
    def _on_finished(self, job_id: int, result: object) -> None:
        self._done()
        self.finished.emit(job_id, result)

    @pyqtSlot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        self._done()
        self.failed.emit(job_id, message)

    def wait_idle(self, poll_ms: int = 5) -> None:
        """Run the Qt event loop until every queued action has finished (scripts and benchmarks that drive the
        window; finished actions' signals are delivered meanwhile). Runs the loop for at least one poll."""
        loop = QEventLoop()
        poll = QTimer(interval=poll_ms)
        poll.timeout.connect(lambda: loop.quit() if self._pending == 0 else None)
        poll.start()
        loop.exec_()
        poll.stop()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop the thread after the queued actions (waits at most ``timeout_ms``)."""
        if self._thread.isRunning():
            self._thread.quit()
            self._thread.wait(timeout_ms)
