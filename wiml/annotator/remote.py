"""Refinement sessions served by a helper process, so that the GUI thread is never held by Python's GIL.

The annotator refines on a worker thread, but SimpleCRF's max-flow holds the GIL for the whole cut, which
stalls the GUI thread as well (docs/results.md). :class:`RefinementServer` runs the sessions in a
separate process instead; the worker thread then only waits on a pipe, which releases the GIL. Each
:class:`RemoteSession` has the interface of :class:`wiml.interactive.session.RefinementSession` (``set_image``,
``initial_mask``, ``add_click``, ``undo``, ``reset``, ``mask``, ``clicks``), so the controller uses either.

Example:
    >>> server = RefinementServer(RefinementConfig())
    >>> session = server.new_session()
    >>> session.set_image(image, cam)
    >>> mask = session.add_click(40, 52, foreground=True)
    >>> server.close()
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import threading
from typing import Any

from wiml.errors import WimlError
from wiml.interactive.session import RefinementConfig

logger = logging.getLogger(__name__)


class RefinementServerError(WimlError):
    """The refinement process died or could not be reached."""


def _serve(conn, config: dict) -> None:
    """Child process: answer ``(session_id, method, args, dropped_ids)`` messages until ``None`` or EOF."""
    refinement = RefinementConfig(**config)
    sessions: dict[int, Any] = {}
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        sid, method, args, dropped = message
        for old in dropped:
            sessions.pop(old, None)
        try:
            if method == "__new__":
                sessions[sid] = refinement.make_session()
                result = None
            else:
                attr = getattr(sessions[sid], method)
                result = attr(*args) if callable(attr) else attr
            reply = (True, result)
        except Exception as exc:  # noqa: BLE001 - every error goes back to the caller, which re-raises it
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - e.g. an exception that cannot be pickled
            conn.send((False, RefinementServerError(f"{exc.__class__.__name__}: {exc}")))
    conn.close()


class RefinementServer:
    """A helper process holding refinement sessions (one pipe, calls serialised by a lock).

    Args:
        refinement: parameters of every session (:class:`RefinementConfig`).

    The process starts with the ``spawn`` method (safe next to Qt's threads) and is a daemon: it ends with the
    annotator even when :meth:`close` is not called.
    """

    def __init__(self, refinement: RefinementConfig | None = None) -> None:
        self._config = dataclasses.asdict(refinement or RefinementConfig())
        self._lock = threading.Lock()
        self._next_id = 0
        self._dropped: list[int] = []
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve, args=(child, self._config), name="wiml-refinement", daemon=True
        )
        self._process.start()
        child.close()
        logger.info("refinement process started (pid %d)", self._process.pid)

    def call(self, sid: int, method: str, *args) -> Any:
        """Call ``method`` of session ``sid`` in the helper process and return its result.

        Raises:
            whatever the session raised (e.g. InputError for a click outside the image);
            RefinementServerError: the process had stopped (it is restarted; its sessions are lost).
        """
        with self._lock:
            dropped, self._dropped = self._dropped, []
            try:
                if not self._process.is_alive():
                    raise EOFError("process not alive")
                self._conn.send((sid, method, args, dropped))
                ok, value = self._conn.recv()
            except (EOFError, OSError) as exc:
                logger.error("refinement process lost (%s); restarting it", exc)
                self._conn.close()
                self._start()
                raise RefinementServerError(
                    "the refinement process had stopped and was restarted; press Segment "
                    "to start this slice again"
                ) from exc
        if not ok:
            raise value
        return value

    def new_session(self) -> RemoteSession:
        """A fresh session in the helper process."""
        with self._lock:
            self._next_id += 1
            sid = self._next_id
        self.call(sid, "__new__")
        return RemoteSession(self, sid)

    def _drop(self, sid: int) -> None:
        self._dropped.append(sid)  # sent with the next call; never I/O from a finaliser

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the helper process (waits at most ``timeout_s``, then terminates it)."""
        if not self._process.is_alive():
            return
        with self._lock:
            try:
                self._conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(1.0)
        self._conn.close()


class RemoteSession:
    """Proxy of a :class:`wiml.interactive.session.RefinementSession` living in a :class:`RefinementServer`."""

    def __init__(self, server: RefinementServer, sid: int) -> None:
        self._server = server
        self._sid = sid

    def set_image(self, image, cam=None, prior=None, source=None) -> None:
        """See :meth:`RefinementSession.set_image` (``prior``/``source``: a proposal of
        :mod:`wiml.interactive.proposals`)."""
        self._server.call(self._sid, "set_image", image, cam, None, False, prior, source)

    def initial_mask(self):
        """See :meth:`RefinementSession.initial_mask`; (H, W) uint8."""
        return self._server.call(self._sid, "initial_mask")

    def add_click(self, row: int, col: int, foreground: bool):
        """See :meth:`RefinementSession.add_click`; (H, W) uint8."""
        return self._server.call(self._sid, "add_click", row, col, foreground)

    def undo(self):
        """See :meth:`RefinementSession.undo`; (H, W) uint8."""
        return self._server.call(self._sid, "undo")

    def reset(self):
        """See :meth:`RefinementSession.reset`; (H, W) uint8."""
        return self._server.call(self._sid, "reset")

    @property
    def mask(self):
        """(H, W) uint8 current mask."""
        return self._server.call(self._sid, "mask")

    @property
    def clicks(self) -> list:
        """Clicks so far (the session's own record)."""
        return self._server.call(self._sid, "clicks")

    def __del__(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server._drop(self._sid)
