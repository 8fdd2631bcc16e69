"""One process at a time in a run folder: ``run.lock`` holding the PID of the process working there.

The lock is an exclusive ``flock`` on ``<folder>/run.lock`` (POSIX), held for as long as the process works
in the folder; the file also records the holder's PID, host, start time and command so that a second process
can say who holds it. The kernel releases the ``flock`` when the holder exits, however it exits, so a lock file
left by a killed process is detected as stale (no ``flock`` on it) and taken over, with a warning naming the
dead PID. A released lock leaves an empty ``run.lock``.

A folder is also busy when its parent holds a lock (``RUN`` while a trainer writes ``RUN/weak``) or one of its
sub-folders does (a trainer in ``RUN/weak`` while a pipeline starts in ``RUN``), unless this same process is
the holder (the pipeline runs its training steps in-process).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from wiml.errors import WimlError
from wiml.layout import RunLayout

logger = logging.getLogger(__name__)


class RunLockedError(WimlError):
    """The folder is in use by another live process (the message names its PID)."""


def _describe(info: dict) -> str:
    started = info.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "?"
    return f"PID {info.get('pid', '?')} ({info.get('command') or 'unknown command'}, since {when})"


def _read_info(path: Path) -> dict:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def holder(path: Path) -> dict | None:
    """Who holds the lock file ``path``: its recorded info (``pid``, ``host``, ``started``, ``command``) when a
    live process holds it, None when it is free or stale (no file, or nobody holds the ``flock``)."""
    path = Path(path)
    if not path.is_file():
        return None
    info = _read_info(path)
    if info.get("pid") == os.getpid():
        return info  # held by this process (through another file descriptor)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return info or {"pid": "?"}
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunLock:
    """An exclusive lock on a run folder (or a training folder), as a context manager.

    Args:
        folder: the folder to lock (created if missing); the lock file is ``folder/run.lock``.
        command: what the holder does, shown to a second process (e.g. ``"wiml pipeline"``).

    Raises:
        RunLockedError: on :meth:`acquire`, when another live process holds this folder, its parent or one of
            its sub-folders; the one-line message names the holder's PID.

    Example:
        >>> with RunLock(run, "wiml pipeline"):
        ...     run_pipeline(config, run)
    """

    def __init__(self, folder: str | Path, command: str = "") -> None:
        self.folder = Path(folder).resolve()
        self.path = RunLayout(self.folder).lock
        self.command = command or " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv[:3]))
        self._fd: int | None = None

    def _busy_nearby(self) -> tuple[Path, dict] | None:
        parent = RunLayout(self.folder.parent).lock
        candidates = [parent]
        if self.folder.is_dir():
            candidates += [RunLayout(child).lock for child in sorted(self.folder.iterdir()) if child.is_dir()]
        for lock in candidates:
            info = holder(lock)
            if info is not None and info.get("pid") != os.getpid():
                return lock, info
        return None

    def acquire(self) -> RunLock:
        """Take the lock (a stale one of a dead process is taken over, with a warning)."""
        if self._fd is not None:
            return self
        nearby = self._busy_nearby()
        if nearby is not None:
            lock, info = nearby
            raise RunLockedError(f"{lock.parent} is in use by {_describe(info)}; wait for it or stop it")
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = _read_info(self.path) or {"pid": "?"}
            raise RunLockedError(
                f"{self.folder} is in use by {_describe(info)}; wait for it or stop it"
            ) from None
        previous = _read_info(self.path)
        if previous.get("pid") and previous.get("pid") != os.getpid():
            logger.warning(
                "%s: taking over the stale lock of %s (that process is no longer running)",
                self.folder,
                _describe(previous),
            )
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "command": self.command,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (the file stays, emptied: removing it would race with a process opening it).
        Safe to call twice."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
