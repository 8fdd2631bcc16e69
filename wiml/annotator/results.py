"""Writers of the annotator's ``result/`` folder (Qt-free).

Layout (see docs/architecture.md, "WIA results")::

    result/CAM/<name>.png            CAM as 8-bit grey (0 = 0.0, 255 = 1.0) at the image's resolution
    result/initial_mask/<name>.png   initial mask, uint8 0/255
    result/strong_label/<name>.png   the final mask, uint8 0/255 (2-D input)
    result/strong_label/<name>.nii.gz  NIfTI with the source geometry (NIfTI / DICOM input)
    result/recording/<name>.json     clicks with times, Dice/IoU per step, initial and final Dice/IoU, time

For a volume, the per-slice files are named ``<name>_<slice:04d>`` (the prepared-slice convention) and the
strong label is one NIfTI volume holding every annotated slice. Every file is written atomically, and an
existing file is first copied aside by :func:`wiml.utils.keep_previous_version` (``x.png`` -> ``x.v1.png``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from wiml.data.io import Geometry, to_source_grid, write_slice, write_volume
from wiml.errors import InputError
from wiml.utils import atomic_write_text, keep_previous_version

logger = logging.getLogger(__name__)

#: the four sub-folders of ``result/``.
RESULT_FOLDERS = ("CAM", "initial_mask", "strong_label", "recording")


def slice_name(name: str, slice_index: int, is_volume: bool) -> str:
    """Result name of one slice: ``<name>`` for a 2-D image, ``<name>_<slice:04d>`` for a volume slice."""
    return f"{name}_{int(slice_index):04d}" if is_volume else name


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


def write_mask_volume(path: Path, mask: np.ndarray, shown: Geometry, source: Geometry) -> Path:
    """Write a (D, H, W) uint8 mask as NIfTI in the source volume's orientation and geometry, keeping any
    previous version.

    Args:
        path: destination ``.nii.gz``.
        mask: (D, H, W) uint8 {0, 1} in the array order of the volume as shown (geometry ``shown``).
        shown: geometry of the shown (reoriented) volume.
        source: geometry of the volume in its file; the mask is reoriented back to it and gets its spacing,
            origin and direction, so it overlays the source in any viewer.

    Raises:
        InputError: the mask does not have the volume's size.
    """
    mask = np.asarray(mask, np.uint8)
    if tuple(reversed(mask.shape)) != tuple(shown.size):
        raise InputError(
            f"mask shape {mask.shape} (z, y, x) does not match the volume {tuple(shown.size)} (x, y, z)", path
        )
    array = to_source_grid(mask, shown, source)
    keep_previous_version(path)
    return write_volume(path, array, like=source)


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` as indented JSON, atomically, keeping any previous version."""
    path = Path(path)
    keep_previous_version(path)
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


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
