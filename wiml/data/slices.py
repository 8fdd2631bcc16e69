"""The prepared-slice format that every step after ``wiml prepare`` reads.

A prepared folder holds::

    manifest.csv          one row per 2-D slice (columns: MANIFEST_COLUMNS)
    slices/<patient>/<patient>_<slice:04d>.npz   image (C, H, W) float32, mask (H, W) uint8 (if any)
    patients.json         per patient: source files and the source volume's geometry
    prepare.json          the resolved prepare config and an input fingerprint

``spacing_mm`` is "row,col,slice" in mm of the *prepared* (resized) slice grid, so that 3-D metrics can
stack slices with their true spacing; it is empty where no physical spacing is known.
"""

from __future__ import annotations

import csv
import dataclasses
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from wiml.errors import InputError

MANIFEST_COLUMNS = ("patient_id", "slice_index", "file", "tag", "has_mask", "split", "spacing_mm", "source")
SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class SliceRecord:
    """One row of ``manifest.csv``.

    Attributes:
        patient_id: patient identifier (splits are by patient).
        slice_index: axial index in the source volume (or running index for slice folders).
        path: absolute path of the slice NPZ.
        tag: image tag, 1 when the slice's mask has any foreground pixel.
        has_mask: whether the NPZ holds a ground-truth mask.
        split: ``train``, ``val`` or ``test``.
        spacing_mm: (row, col, slice) spacing in mm of the prepared grid, or None when unknown.
        source: the source file the slice came from.
        tag_source: where the tag came from: ``mask`` (computed from the slice's mask by ``prepare``) or
            ``person`` (given by an annotator; optional manifest column ``tag_source``, default ``mask``).
    """

    patient_id: str
    slice_index: int
    path: Path
    tag: int
    has_mask: bool
    split: str
    spacing_mm: tuple[float, float, float] | None
    source: str
    tag_source: str = "mask"


def _parse_spacing(text: str) -> tuple[float, float, float] | None:
    text = (text or "").strip()
    if not text:
        return None
    parts = [float(p) for p in text.split(",")]
    if len(parts) == 2:
        parts.append(1.0)
    return (parts[0], parts[1], parts[2])


def format_spacing(spacing_mm: Sequence[float] | None) -> str:
    """(row, col, slice) mm -> ``"r,c,s"`` for the manifest ("" when unknown)."""
    if spacing_mm is None:
        return ""
    return ",".join(f"{float(s):.6g}" for s in spacing_mm)


def read_manifest(path: str | Path, split: str | Iterable[str] | None = None) -> list[SliceRecord]:
    """Read ``manifest.csv`` (or the folder holding it).

    Args:
        path: the manifest file or its folder.
        split: keep only this split (or these splits).

    Returns:
        Records sorted by (patient_id, slice_index).

    Raises:
        InputError: missing file, missing columns, or a malformed row.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.csv"
    if not path.is_file():
        raise InputError("manifest not found; run `wiml prepare` first (expected manifest.csv)", path)
    keep = None if split is None else ({split} if isinstance(split, str) else set(split))
    records = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = set(MANIFEST_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise InputError(
                f"manifest lacks column(s) {sorted(missing)}; expected {list(MANIFEST_COLUMNS)}", path
            )
        for lineno, row in enumerate(reader, start=2):
            try:
                rec = SliceRecord(
                    patient_id=row["patient_id"],
                    slice_index=int(row["slice_index"]),
                    path=(path.parent / row["file"]).resolve(),
                    tag=int(row["tag"]),
                    has_mask=row["has_mask"].strip() in ("1", "True", "true"),
                    split=row["split"],
                    spacing_mm=_parse_spacing(row["spacing_mm"]),
                    source=row["source"],
                    tag_source=(row.get("tag_source") or "mask").strip(),
                )
            except (TypeError, ValueError) as exc:
                raise InputError(f"line {lineno}: malformed row ({exc})", path) from exc
            if rec.tag not in (0, 1):
                raise InputError(f"line {lineno}: tag must be 0 or 1, got {rec.tag}", path)
            if keep is None or rec.split in keep:
                records.append(rec)
    records.sort(key=lambda r: (r.patient_id, r.slice_index))
    return records


def write_manifest(path: str | Path, rows: Iterable[dict]) -> Path:
    """Write manifest rows (dicts with MANIFEST_COLUMNS, optionally ``tag_source``) atomically."""
    from wiml.utils import atomic_path

    path = Path(path)
    rows = list(rows)
    columns = list(MANIFEST_COLUMNS) + (["tag_source"] if any("tag_source" in r for r in rows) else [])
    with atomic_path(path) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: row.get(k, "mask") if k == "tag_source" else row[k] for k in columns})
    return path


def load_slice(record: SliceRecord | str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Load one prepared slice.

    Returns:
        image: (C, H, W) float32.
        mask: (H, W) uint8 with values in {0, 1} (class ids for multi-class tasks), or None.

    Raises:
        InputError: missing or corrupt NPZ, wrong shapes or dtypes.
    """
    path = Path(record.path if isinstance(record, SliceRecord) else record)
    if not path.is_file():
        raise InputError("prepared slice not found (re-run `wiml prepare`)", path)
    try:
        with np.load(path, allow_pickle=False) as data:
            image = np.asarray(data["image"], dtype=np.float32)
            mask = np.asarray(data["mask"], dtype=np.uint8) if "mask" in data.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(
            f"not a valid prepared slice NPZ (expected arrays 'image' and optional 'mask'): {exc}", path
        ) from exc
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise InputError(f"image must be (C, H, W), got shape {image.shape}", path)
    if mask is not None and mask.shape != image.shape[1:]:
        raise InputError(f"mask shape {mask.shape} does not match image {image.shape[1:]}", path)
    return image, mask


def save_slice(path: str | Path, image: np.ndarray, mask: np.ndarray | None = None) -> Path:
    """Write a prepared slice NPZ atomically (image (C, H, W) float32, mask (H, W) uint8)."""
    from wiml.utils import atomic_path

    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[None]
    arrays = {"image": image}
    if mask is not None:
        arrays["mask"] = np.asarray(mask, dtype=np.uint8)
    with atomic_path(path) as tmp:
        with tmp.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
    return Path(path)


def load_slices(records: Iterable[SliceRecord]) -> dict[Path, tuple[np.ndarray, np.ndarray | None]]:
    """Load many prepared slices into memory once (for experiments that train many models on one set).

    Args:
        records: manifest rows.

    Returns:
        ``{record.path: (image (C, H, W) float32, mask (H, W) uint8 | None)}``.

    Raises:
        InputError: a slice file that cannot be read (see :func:`load_slice`).
    """
    return {rec.path: load_slice(rec) for rec in records}
