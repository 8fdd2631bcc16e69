"""Exception types raised by WIML.

Every error that comes from bad input names the offending file (when there is one) and what was
expected, so that the CLI can print it as one line.
"""

from __future__ import annotations

from pathlib import Path


class WimlError(Exception):
    """Base class of all errors WIML raises on purpose."""


class InputError(WimlError, ValueError):
    """Bad input data: a missing, unreadable or inconsistent file, or an argument out of range.

    Args:
        message: what is wrong and what was expected.
        path: the file or folder concerned, if any; it is prefixed to the message.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded: missing, truncated, unsafe or of another architecture."""


class ConfigError(InputError):
    """A configuration file or override that does not match the expected schema."""


class DependencyError(WimlError):
    """A required library is missing, shadowed by another package of the same name, or does not run.

    The message names the module's file and how to fix it (``wiml doctor`` checks them all).
    """


class OutputError(WimlError, OSError):
    """A file or folder that cannot be written: read-only file system, no space left, permission denied...

    Also an ``OSError`` (with ``errno`` and ``filename`` where known), so code that handles file-system
    errors keeps handling it.

    Args:
        path: the file or folder that could not be written.
        exc: the operating system's error (its ``strerror`` and errno name end the message), or the text of
            a library's error where there is no ``OSError`` (SimpleITK's writers).
    """

    def __init__(self, path: str | Path, exc: OSError | str) -> None:
        import errno

        if isinstance(exc, str):
            super().__init__(f"{path}: cannot write: {exc}")
            self.path, self.filename, self.strerror = Path(path), str(path), exc
            return
        code = errno.errorcode.get(exc.errno, "") if exc.errno is not None else ""
        cause = exc.strerror or str(exc) or exc.__class__.__name__
        other = f" (at {exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        super().__init__(f"{path}: cannot write: {cause}{f' [{code}]' if code else ''}{other}")
        self.path, self.filename, self.strerror, self.errno = Path(path), str(path), cause, exc.errno

    def __str__(self) -> str:  # the one-line message, not OSError's "[Errno n] ..." form
        return str(self.args[0])
