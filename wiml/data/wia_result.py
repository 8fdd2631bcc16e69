"""The WIA result folder: one writer and reader for the annotator GUI, ``wiml wia-sim`` and ``train-msl``.

Layout (docs/architecture.md, "WIA results")::

    result/CAM/<name>.png               CAM as 8-bit grey (0 = 0.0, 255 = 1.0) at the image's resolution
    result/initial_mask/<name>.png      the proposal the slice started from, uint8 0/255
    result/strong_label/<name>.png      the final mask, uint8 0/255 (2-D input)
    result/strong_label/<image>.nii.gz  NIfTI with the source geometry (NIfTI / DICOM input), every slice
                                        annotated so far (saving merges: slices saved earlier stay)
    result/recording/<name>.json        the interaction record (:class:`Recording`, versioned)
    result/tags/<image>.csv             image tags per slice of a volume (slice_index, tag, source)

For a volume, the per-slice files are named ``<image>_<slice:04d>`` (the prepared-slice convention). Every file
is written atomically, and an existing file is first kept as ``<name>.v1.<ext>``, ``.v2``, ...
(:func:`wiml.utils.keep_previous_version`). Qt-free and below the training layer, so that the GUI, the
robot user and the trainers share it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import re
from pathlib import Path

import numpy as np

from wiml.data.io import (
    Geometry,
    orientation_code,
    read_volume,
    reorient,
    to_source_grid,
    write_slice,
    write_volume,
)
from wiml.errors import InputError
from wiml.utils import atomic_write_text, keep_previous_version

logger = logging.getLogger(__name__)

#: version of the recording JSON written now (1: the unversioned records of earlier releases).
SCHEMA_VERSION = 2
#: the sub-folders of ``result/``.
RESULT_FOLDERS = ("CAM", "initial_mask", "strong_label", "recording", "tags")


def is_previous_version(path: Path) -> bool:
    """Whether ``path`` is an earlier version kept aside (``name.v1.png``, ``vol.v2.nii.gz``)."""
    name = Path(path).name
    stem = name.split(".")[0]
    rest = name[len(stem) :]
    return bool(re.match(r"^\.v\d+\.", rest))


def slice_name(name: str, slice_index: int, is_volume: bool) -> str:
    """Result name of one slice: ``<name>`` for a 2-D image, ``<name>_<slice:04d>`` for a volume slice."""
    return f"{name}_{int(slice_index):04d}" if is_volume else name


# ---------------------------------------------------------------------------------------------- recording
@dataclasses.dataclass
class Recording:
    """The interaction record of one strong label (``result/recording/<name>.json``), schema version 2.

    The GUI and the robot user (``wiml wia-sim``) write the same fields; fields a writer does not know are
    None (or empty).

    Attributes:
        image: the file (or DICOM folder / prepared slice) that was annotated.
        patient_id: patient of the slice (the image name for a file outside a prepared set).
        slice_index: index of the slice in its volume (the prepared index for a prepared slice).
        source: who made it: ``gui`` (a person) or ``robot`` (``wiml wia-sim``).
        clicks: the clicks of the final mask, in order: ``{"row", "col", "label" (1 fg / 0 bg), "t_s"}``.
        dice_per_step, iou_per_step: against the ground truth, the proposal first then after each click
            (empty without a ground truth).
        initial_dice, final_dice, initial_iou, final_iou: first and last of those (None without one).
        total_time_s: seconds the slice was worked on (GUI: shown; robot: refinement time).
        active_time_s: seconds of work without idle gaps (GUI: gaps between actions capped at
            ``idle_gap_s``); None where not measured.
        events: every action with its time, including those later undone: ``{"action", "t_s", ...}`` with
            action one of segment, propagate, click, undo, redo, clear, brush, erase, load_saved, restore.
        proposal: what the slice started from: cam, none, propagated, saved, recovered.
        shape: (H, W) of the slice in px; foreground_px: pixels of the final mask.
        ground_truth, checkpoint: paths used (None when absent); refinement: the refinement parameters.
        schema_version: version of this layout (:data:`SCHEMA_VERSION`).
    """

    image: str
    patient_id: str
    slice_index: int
    source: str = "gui"
    clicks: list[dict] = dataclasses.field(default_factory=list)
    dice_per_step: list[float] = dataclasses.field(default_factory=list)
    iou_per_step: list[float] = dataclasses.field(default_factory=list)
    initial_dice: float | None = None
    final_dice: float | None = None
    initial_iou: float | None = None
    final_iou: float | None = None
    total_time_s: float | None = None
    active_time_s: float | None = None
    events: list[dict] = dataclasses.field(default_factory=list)
    proposal: str | None = None
    shape: list[int] | None = None
    foreground_px: int | None = None
    ground_truth: str | None = None
    checkpoint: str | None = None
    refinement: dict | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, path: Path | None = None) -> Recording:
        """Read a record of any known version (version 1 had no ``schema_version``; its ``source`` was free text).

        Raises:
            InputError: not an object, a required field missing, or a newer schema version.
        """
        if not isinstance(data, dict):
            raise InputError("expected a JSON object (a WIA interaction record)", path)
        version = int(data.get("schema_version", 1))
        if version > SCHEMA_VERSION:
            raise InputError(
                f"recording schema version {version} is newer than this WIML reads ({SCHEMA_VERSION})", path
            )
        missing = [k for k in ("image", "patient_id", "slice_index") if k not in data]
        if missing:
            raise InputError(f"interaction record lacks {', '.join(missing)}", path)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if version == 1:
            source = str(data.get("source", "gui"))
            values["source"] = "robot" if "robot" in source else "gui"
            steps = list(values.get("dice_per_step") or [])
            initial = values.get("initial_dice")
            if (
                values["source"] == "robot"
                and initial is not None
                and len(steps) == len(data.get("clicks", []))
            ):
                values["dice_per_step"] = [initial, *steps]  # v1 robot records left out the proposal's Dice
        values["schema_version"] = SCHEMA_VERSION
        return cls(**values)


def write_recording(path: Path, recording: Recording) -> Path:
    """Write a :class:`Recording` as indented JSON, atomically, keeping any previous version."""
    path = Path(path)
    keep_previous_version(path)
    return atomic_write_text(path, json.dumps(recording.to_dict(), indent=2) + "\n")


def read_recording(path: Path) -> Recording:
    """Read ``result/recording/<name>.json`` (any schema version).

    Raises:
        InputError: unreadable JSON or not an interaction record.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the interaction record ({exc})", path) from exc
    return Recording.from_dict(data, path)


# ---------------------------------------------------------------------------------------------- masks
def write_png(path: Path, image: np.ndarray) -> Path:
    """Write an (H, W) uint8 image as PNG (:func:`wiml.data.io.write_slice`), keeping any previous version.

    Raises:
        InputError: the array is not 2-D uint8.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise InputError(f"expected an (H, W) uint8 image, got {image.shape} {image.dtype}", path)
    keep_previous_version(path)
    return write_slice(path, image)


def read_mask_volume(path: Path, shown: Geometry) -> np.ndarray:
    """Read a saved strong-label volume in the array order of the volume as shown.

    Args:
        path: a NIfTI written by :func:`write_mask_volume` (any orientation of the same grid).
        shown: geometry of the shown (reoriented) image volume.

    Returns:
        (D, H, W) uint8 {0, 1}.

    Raises:
        InputError: unreadable, or a grid other than the image's.
    """
    vol = read_volume(path)
    array, geometry = reorient(vol.array, vol.geometry, orientation_code(shown))
    if tuple(geometry.size) != tuple(shown.size):
        raise InputError(
            f"saved label of size {tuple(geometry.size)} (x, y, z) does not match the image {tuple(shown.size)}",
            path,
        )
    if not np.allclose(geometry.spacing, shown.spacing, rtol=1e-3, atol=1e-4):
        raise InputError(
            f"saved label spacing {geometry.spacing} mm differs from the image's {shown.spacing}", path
        )
    return (np.asarray(array) > 0).astype(np.uint8)


def write_mask_volume(
    path: Path,
    mask: np.ndarray,
    shown: Geometry,
    source: Geometry,
    slices: list[int] | None = None,
) -> Path:
    """Write a (D, H, W) uint8 mask as NIfTI in the source volume's orientation and geometry, keeping any
    previous version; with ``slices``, merge into the label already there.

    Args:
        path: destination ``.nii.gz``.
        mask: (D, H, W) uint8 {0, 1} in the array order of the volume as shown (geometry ``shown``).
        shown: geometry of the shown (reoriented) volume.
        source: geometry of the volume in its file; the mask is reoriented back to it and gets its spacing,
            origin and direction, so it overlays the source in any viewer.
        slices: indices (shown order) this mask sets; every other slice keeps what ``path`` already holds
            (None: the whole mask replaces the file).

    Raises:
        InputError: the mask does not have the volume's size, or the existing file has another grid.
    """
    mask = np.asarray(mask, np.uint8)
    if tuple(reversed(mask.shape)) != tuple(shown.size):
        raise InputError(
            f"mask shape {mask.shape} (z, y, x) does not match the volume {tuple(shown.size)} (x, y, z)", path
        )
    path = Path(path)
    if slices is not None and path.exists():
        merged = read_mask_volume(path, shown)
        idx = [int(i) for i in slices]
        merged[idx] = mask[idx]
        kept = int(np.count_nonzero(merged.reshape(len(merged), -1).any(axis=1)))
        logger.info("merged %d slice(s) into %s (%d labelled slice(s) now)", len(idx), path, kept)
        mask = merged
    array = to_source_grid(mask, shown, source)
    keep_previous_version(path)
    return write_volume(path, array, like=source)


# ---------------------------------------------------------------------------------------------- tags
TAG_COLUMNS = ("slice_index", "tag", "source")


def write_tags_csv(path: Path, tags: dict[int, int], sources: dict[int, str] | None = None) -> Path:
    """Write image tags of a volume's slices (``slice_index,tag,source``), keeping any previous version.

    Args:
        path: ``result/tags/<image>.csv``.
        tags: {slice index: 0 absent / 1 present}; slices without a tag are left out.
        sources: {slice index: who set it (``gui``, ``range``, ``label``)}; default ``gui``.

    Raises:
        InputError: a tag other than 0 or 1.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TAG_COLUMNS)
    for index in sorted(tags):
        tag = int(tags[index])
        if tag not in (0, 1):
            raise InputError(f"tag of slice {index} must be 0 or 1, got {tags[index]!r}", path)
        writer.writerow((int(index), tag, (sources or {}).get(index, "gui")))
    path = Path(path)
    keep_previous_version(path)
    return atomic_write_text(path, buf.getvalue())


def read_tags_csv(path: Path) -> dict[int, int]:
    """Read ``result/tags/<image>.csv`` -> {slice index: tag}.

    Raises:
        InputError: missing columns or values that are not integers 0/1.
    """
    path = Path(path)
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    except OSError as exc:
        raise InputError(f"cannot read the tags ({exc.strerror or exc})", path) from exc
    out: dict[int, int] = {}
    for n, row in enumerate(rows, start=2):
        try:
            index, tag = int(row["slice_index"]), int(row["tag"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"line {n}: expected columns slice_index,tag with integers", path) from exc
        if tag not in (0, 1):
            raise InputError(f"line {n}: tag must be 0 or 1, got {tag}", path)
        out[index] = tag
    return out


def default_result_dir(image_path: Path) -> Path:
    """``result/`` beside the image's folder: ``data_source/1.png`` -> ``result/`` next to ``data_source/``.

    A DICOM series is its own folder: ``patient/PATIENT_DICOM`` -> ``patient/result``. A prepared slice
    ``<prepared dir>/slices/<patient>/<name>.npz`` -> ``<prepared dir>/result``.
    """
    image_path = Path(image_path)
    folder = image_path if image_path.is_dir() else image_path.parent
    if image_path.suffix == ".npz" and folder.parent.name == "slices":
        return folder.parent.parent / "result"  # a prepared slice: <prepared dir>/result
    return folder.parent / "result"
