"""Small shared helpers: atomic writes (files, CSV tables, figures), device resolution, seeding, file versioning."""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: mode of files written through :func:`atomic_path` (``mkstemp`` alone would leave them 0600).
_FILE_MODE = 0o666 & ~_current_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the destination folder; rename it onto ``path`` on success.

    The destination is only replaced once the block finishes without an exception, so a crash never
    leaves a half-written file behind. The suffix of ``path`` is kept (``.nii.gz`` included) so that
    writers that choose a format from the extension work.

    Args:
        path: final destination.

    Yields:
        Path: the temporary file to write.

    Raises:
        OutputError: the folder cannot be created or written, the disk is full, permission is denied (any
            ``OSError`` while the block writes), naming ``path`` and the cause; the temporary file is removed.
    """
    from wiml.errors import OutputError

    path = Path(path)
    tmp_path = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = "".join(path.suffixes) or ".tmp"
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, path)
    except OSError as exc:
        raise OutputError(path, exc) from exc
    finally:
        if tmp_path is not None and tmp_path.exists():
            with contextlib.suppress(OSError):
                tmp_path.unlink()


@contextlib.contextmanager
def staged_output(out: str | Path, last: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield an empty staging folder beside ``out``; move its contents into ``out`` only on success.

    A step writes all its outputs into the staging folder; when the block finishes without an exception each
    top-level entry replaces the one of the same name in ``out`` (other entries of ``out`` are kept), the
    names in ``last`` (e.g. ``summary.json``, the mark of a complete step) removed first and moved last. On an
    exception the staging folder is removed and ``out`` is left as it was, so a failed step never leaves a
    partial output.

    Args:
        out: the step's output folder (created when missing).
        last: entries removed from ``out`` before and moved into it after all the others.

    Yields:
        Path: the staging folder (``.<name>.partial-*`` in ``out``'s parent).

    Raises:
        OutputError: the staging folder cannot be created or moved (read-only, full disk, permission).
    """
    from wiml.errors import OutputError

    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        staging.chmod(0o777 & ~_current_umask())  # mkdtemp makes it 0700
    except OSError as exc:
        raise OutputError(out, exc) from exc
    try:
        yield staging
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name in last:
                _remove(out / name)
            names = sorted(p.name for p in staging.iterdir())
            for name in [n for n in names if n not in last] + [n for n in last if n in names]:
                _remove(out / name)
                os.replace(staging / name, out / name)
        except OSError as exc:
            raise OutputError(out, exc) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8). Returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically. Returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_csv(
    path: str | Path,
    rows: list[dict],
    columns: list[str] | None = None,
    float_format: str | None = None,
) -> Path:
    """Write ``rows`` as a CSV table with a header line to ``path`` atomically. Returns the path.

    Args:
        path: the CSV file.
        rows: one dict per row; a key a row lacks is written empty.
        columns: the header; None = every key of ``rows`` in first-seen order (no rows: an empty file).
        float_format: format spec of float cells (e.g. ``".6g"``); None = ``str``.

    Raises:
        ValueError: a row has a key that is not in ``columns``.
        OutputError: ``path`` cannot be written (see :func:`atomic_path`).
    """
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(path) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            if columns:
                writer = csv.DictWriter(fh, fieldnames=columns, restval="")
                writer.writeheader()
                for row in rows:
                    if float_format is not None:
                        row = {
                            k: format(v, float_format) if isinstance(v, float) else v for k, v in row.items()
                        }
                    writer.writerow(row)
    return Path(path)


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (figures go to files, never to a screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: float | str = "figure") -> Path:
    """Lay out ``fig`` (``tight_layout``), write it to ``path`` atomically as PNG and close it (also when
    the write fails). Returns the path.

    Args:
        fig: a ``matplotlib.figure.Figure``.
        path: the PNG file.
        dpi: dots per inch; ``"figure"`` keeps the figure's own.

    Raises:
        OutputError: ``path`` cannot be written (see :func:`atomic_path`).
    """
    try:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        pyplot().close(fig)
    return Path(path)


def keep_previous_version(path: str | Path) -> Path | None:
    """Move an existing file aside before it is replaced, so nothing saved is lost.

    ``mask.png`` becomes ``mask.v1.png`` (then ``.v2`` ...), next to the original. The previous version is a
    hard link where the file system allows it (nothing copied, so it works on a full disk), else a copy; a copy
    that fails is removed, so no empty or partial backup is left. Replace ``path`` by renaming onto it
    (:func:`atomic_path`), never by writing into it, as a hard link shares the old content.

    Returns:
        The path the previous version was moved to, or None when ``path`` did not exist.
    """
    path = Path(path)
    if not path.exists():
        return None
    name = path.name
    stem, dot, ext = name.partition(".")
    n = 1
    while True:
        candidate = path.with_name(f"{stem}.v{n}{dot}{ext}")
        if not candidate.exists():
            break
        n += 1
    try:
        os.link(path, candidate)  # no data copied: works on a full disk, never leaves a partial backup
    except OSError:
        try:
            shutil.copy2(path, candidate)
        except OSError:
            candidate.unlink(missing_ok=True)  # never leave an empty or partial backup behind
            raise
    return candidate


def resolve_device(device: str = "auto"):
    """Resolve ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` to a ``torch.device`` once.

    Raises:
        InputError: ``cuda`` was requested but no CUDA device is present, or the name is unknown.
    """
    import torch

    from wiml.errors import InputError

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available (use --device cpu)")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"unknown device {device!r}; expected auto, cpu or cuda[:N]") from exc


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that the same seed on the same machine gives the same numbers."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def enlarge_nearest(image: np.ndarray, min_side_px: int = 256) -> np.ndarray:
    """Enlarge an (H, W[, C]) picture by an integer factor (nearest neighbour) so its longer side is at least
    ``min_side_px``; small slices stay readable in overlay PNGs. Returns the input when it is large enough."""
    factor = max(1, -(-int(min_side_px) // max(image.shape[:2])))
    if factor == 1:
        return image
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


class Timer:
    """Context manager measuring wall time in seconds (``.seconds``)."""

    def __enter__(self) -> Timer:
        self._t0 = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0
