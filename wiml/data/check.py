"""``wiml check-data``: check a prepared folder before any step reads it.

Checked for every ``manifest.csv`` row (see :mod:`wiml.data.slices` for the format):

- the slice NPZ exists and opens (a corrupt or truncated NPZ is named, never a traceback);
- the image is (C, H, W) (or (H, W)) of a floating dtype with finite values; the mask, where there is one,
  is (H, W) of an integer dtype and the manifest's ``has_mask`` agrees with the file;
- the image tag equals "the mask has foreground" (with crop-level tags: at least
  ``crops.min_foreground_px`` foreground pixels, as ``prepare.json`` records), unless the row's optional
  ``tag_source`` column says the tag came from a person;
- the spacing is positive and finite.

Across rows: no patient is listed in two splits. Every bad row is collected and reported in one
:class:`~wiml.errors.InputError` (the first :data:`MAX_LISTED` rows, then a count), each naming its file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from wiml.data.slices import SliceRecord, read_manifest
from wiml.errors import InputError

logger = logging.getLogger(__name__)

#: bad rows listed by name in the error; the rest are counted.
MAX_LISTED = 20


@dataclasses.dataclass
class DataCheckReport:
    """What :func:`check_data` looked at.

    Attributes:
        folder: the prepared folder.
        n_rows: manifest rows checked.
        n_patients: distinct patients.
        splits: rows per split.
        problems: one line per bad row or patient (empty when the folder is sound).
        seconds: wall time of the check.
    """

    folder: Path
    n_rows: int
    n_patients: int
    splits: dict[str, int]
    problems: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        """One line: how many rows are bad, then each (up to :data:`MAX_LISTED`) with its file."""
        shown = "; ".join(self.problems[:MAX_LISTED])
        more = len(self.problems) - MAX_LISTED
        tail = f"; and {more} more" if more > 0 else ""
        return (
            f"{len(self.problems)} problem(s) in the prepared data ({self.n_rows} rows checked; "
            f"re-run `wiml prepare` or fix the files): {shown}{tail}"
        )


def _min_foreground_px(folder: Path) -> int:
    """Foreground pixels a mask needs for tag 1: 1, or ``crops.min_foreground_px`` for crop-level tags."""
    meta_path = folder / "prepare.json"
    if not meta_path.is_file():
        return 1
    try:
        crops = (json.loads(meta_path.read_text(encoding="utf-8")).get("config") or {}).get("crops") or {}
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise InputError(
            f"not valid JSON ({exc.__class__.__name__}); expected prepare's record", meta_path
        ) from exc
    if crops.get("enabled"):
        return max(1, int(crops.get("min_foreground_px", 1)))
    return 1


def _check_row(rec: SliceRecord, rel: str, min_fg_px: int) -> str | None:
    """The problem with one manifest row, or None."""
    if rec.tag_source not in ("mask", "person"):
        return f"{rel}: tag_source {rec.tag_source!r}, expected 'mask' or 'person'"
    if rec.spacing_mm is not None and not all(np.isfinite(s) and s > 0 for s in rec.spacing_mm):
        return f"{rel}: spacing_mm {rec.spacing_mm} is not positive"
    if not rec.path.is_file():
        return f"{rel}: file not found"
    try:
        with np.load(rec.path, allow_pickle=False) as npz:
            if "image" not in npz.files:
                return f"{rel}: NPZ lacks the array 'image' (has {sorted(npz.files)})"
            image = npz["image"]
            mask = npz["mask"] if "mask" in npz.files else None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        return f"{rel}: corrupt NPZ ({exc.__class__.__name__}: {first})"
    if image.ndim not in (2, 3) or min(image.shape, default=0) < 1:
        return f"{rel}: image shape {image.shape}, expected (C, H, W)"
    if not np.issubdtype(image.dtype, np.floating):
        return f"{rel}: image dtype {image.dtype}, expected float32"
    if not np.isfinite(image).all():
        return f"{rel}: image holds NaN or inf"
    if mask is None:
        return f"{rel}: manifest says has_mask=1 but the NPZ has no mask" if rec.has_mask else None
    if not rec.has_mask:
        return f"{rel}: the NPZ has a mask but the manifest says has_mask=0"
    if mask.shape != image.shape[-2:]:
        return f"{rel}: mask shape {mask.shape} does not match the image {image.shape[-2:]}"
    if not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == np.bool_):
        return f"{rel}: mask dtype {mask.dtype}, expected uint8"
    if rec.tag_source != "person":
        expected = int(np.count_nonzero(mask) >= min_fg_px)
        if rec.tag != expected:
            return f"{rel}: tag {rec.tag} contradicts the mask ({int(np.count_nonzero(mask))} foreground px)"
    return None


def check_data(folder: str | Path, progress: bool = False) -> DataCheckReport:
    """Check a prepared folder (see the module docstring); never raises for bad rows.

    Args:
        folder: the prepared folder (holding ``manifest.csv``) or the manifest itself.
        progress: show a tqdm bar over the rows.

    Returns:
        DataCheckReport whose ``problems`` lists every bad row (empty when the folder is sound).

    Raises:
        InputError: no manifest, a manifest that cannot be parsed, or an unreadable ``prepare.json``.
    """
    t0 = time.perf_counter()
    folder = Path(folder)
    if folder.name == "manifest.csv":
        folder = folder.parent
    records = read_manifest(folder)
    if not records:
        raise InputError("manifest.csv has no rows", folder / "manifest.csv")
    min_fg_px = _min_foreground_px(folder)
    root = folder.resolve()
    problems: list[str] = []
    splits_of: dict[str, set[str]] = defaultdict(set)
    for rec in tqdm(records, desc="check-data", unit="slice", disable=not progress):
        splits_of[rec.patient_id].add(rec.split)
        try:
            rel = str(rec.path.relative_to(root))
        except ValueError:
            rel = str(rec.path)
        bad = _check_row(rec, rel, min_fg_px)
        if bad:
            problems.append(bad)
    for pid, splits in sorted(splits_of.items()):
        if len(splits) > 1:
            problems.insert(0, f"patient {pid!r} is in more than one split ({', '.join(sorted(splits))})")
    counts: dict[str, int] = defaultdict(int)
    for rec in records:
        counts[rec.split] += 1
    report = DataCheckReport(
        folder=folder, n_rows=len(records), n_patients=len(splits_of), splits=dict(counts),
        problems=problems, seconds=time.perf_counter() - t0,
    )  # fmt: skip
    logger.debug("check-data: %d rows of %s in %.2f s", len(records), folder, report.seconds)
    return report


def require_valid_data(folder: str | Path, progress: bool = False) -> DataCheckReport:
    """:func:`check_data`, raising when anything is wrong (the steps call this before they start).

    Raises:
        InputError: one line naming the manifest and every bad row (up to :data:`MAX_LISTED`, then a count).
    """
    report = check_data(folder, progress=progress)
    if not report.ok:
        raise InputError(report.message(), report.folder / "manifest.csv")
    logger.info(
        "check-data: %d slices of %d patients OK (%.2f s)", report.n_rows, report.n_patients, report.seconds
    )
    return report
