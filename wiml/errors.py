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
