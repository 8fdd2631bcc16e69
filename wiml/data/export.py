"""Export what a person annotated (the annotator's ``result/`` folder) as an nnU-Net v2 or MSD raw dataset.

Each annotated image becomes one training case: the image in its source geometry (a DICOM series becomes a
NIfTI volume with the series' spacing, origin and direction) and a label map on the same voxel grid:

* 1 on the strong label's foreground, 0 elsewhere on the slices the person annotated (a recording exists);
* 0 on the slices the person tagged absent (``tags/<image>.csv``: no target means all background);
* :data:`IGNORE_LABEL` (2) on every other slice: not annotated. nnU-Net v2 leaves such voxels out of the
  loss when ``dataset.json`` declares the label ``ignore`` (its support for sparse annotations), so a volume
  with a few labelled slices is a valid training case. A 2-D image gives a 1-slice volume.

Layouts:

* ``nnunet`` (nnU-Net v2 raw): ``<out>/Dataset<ID>_<name>/{dataset.json, imagesTr/<case>_0000.nii.gz,
  labelsTr/<case>.nii.gz}``; ``dataset.json`` = ``{"channel_names", "labels": {"background": 0, "target": 1,
  "ignore": 2}, "numTraining", "file_ending"}``.
* ``msd`` (Medical Segmentation Decathlon): ``<out>/<name>/{dataset.json, imagesTr/<case>.nii.gz,
  labelsTr/<case>.nii.gz}`` with ``"training": [{"image", "label"}]``; label 2 is named ``unlabelled``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import numpy as np

from wiml.data.io import (
    SLICE_SUFFIXES,
    Geometry,
    Volume,
    read_slice,
    read_volume,
    strip_suffix,
    to_source_grid,
    write_volume,
)
from wiml.data.wia_result import is_previous_version, read_mask_volume, read_recording, read_tags_csv
from wiml.errors import InputError
from wiml.utils import atomic_write_text

logger = logging.getLogger(__name__)

#: label value of voxels nobody annotated.
IGNORE_LABEL = 2
#: export formats.
FORMATS = ("nnunet", "msd")
#: the orientation the annotator shows volumes in (``wiml prepare``'s default).
SHOWN_ORIENTATION = "LPS"


@dataclasses.dataclass
class ExportSummary:
    """What :func:`export_annotations` wrote.

    Attributes:
        dataset_dir: the dataset folder.
        cases: case ids, in order.
        labelled_slices: per case, number of slices with a label (annotated or tagged absent).
    """

    dataset_dir: Path
    cases: list[str]
    labelled_slices: list[int]


def _case_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)


def _annotated_images(result_dir: Path) -> dict[str, tuple[str, set[int]]]:
    """{image stem: (image path, {annotated slice indices})} from the recordings."""
    rec_dir = result_dir / "recording"
    out: dict[str, tuple[str, set[int]]] = {}
    for path in sorted(rec_dir.glob("*.json")) if rec_dir.is_dir() else []:
        if is_previous_version(path):
            continue
        rec = read_recording(path)
        stem = strip_suffix(Path(rec.image))
        image, slices = out.setdefault(stem, (rec.image, set()))
        slices.add(int(rec.slice_index))
    return out


def export_annotations(
    result_dir: str | Path,
    out: str | Path,
    fmt: str = "nnunet",
    dataset_id: int = 501,
    name: str = "WIML",
    channel_name: str = "CT",
) -> ExportSummary:
    """Write the annotations of ``result_dir`` as an nnU-Net v2 (``nnunet``) or MSD (``msd``) raw dataset.

    Args:
        result_dir: the annotator's result folder (``strong_label/``, ``recording/``, ``tags/``).
        out: folder the dataset folder is created in (``nnUNet_raw`` for nnU-Net).
        fmt: ``nnunet`` or ``msd``.
        dataset_id: nnU-Net dataset id (1-999).
        name: dataset name (letters, digits, ``_``).
        channel_name: name of the one input channel (``CT``, ``MR``, ...; nnU-Net normalises ``CT`` by HU).

    Returns:
        :class:`ExportSummary`.

    Raises:
        InputError: nothing annotated, a missing source image or saved label, or a bad format / id / name.
    """
    result_dir, out = Path(result_dir), Path(out)
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; expected one of {FORMATS}")
    if not 1 <= int(dataset_id) <= 999:
        raise InputError(f"nnU-Net dataset id must be in 1..999, got {dataset_id}")
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise InputError(f"dataset name must be letters, digits and _, got {name!r}")
    images = _annotated_images(result_dir)
    if not images:
        raise InputError(
            "no annotation found (recording/*.json); annotate and save in WIA/main.py first", result_dir
        )
    dataset_dir = out / (f"Dataset{int(dataset_id):03d}_{name}" if fmt == "nnunet" else name)
    (dataset_dir / "imagesTr").mkdir(parents=True, exist_ok=True)
    (dataset_dir / "labelsTr").mkdir(parents=True, exist_ok=True)
    cases, counts, training = [], [], []
    for stem, (image_path, slices) in sorted(images.items()):
        if not Path(image_path).exists():
            raise InputError("the annotated image is gone; it is needed for the export", Path(image_path))
        raster = Path(image_path).name.lower().endswith(SLICE_SUFFIXES)
        if raster:  # a 2-D image: a 1-slice volume, 1 mm pixels
            pixels = read_slice(image_path)
            source = Volume(
                pixels[None].astype(pixels.dtype),
                Geometry(
                    (pixels.shape[1], pixels.shape[0], 1),
                    (1.0, 1.0, 1.0),
                    (0.0, 0.0, 0.0),
                    (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
                ),
            )
            shown = source
        else:
            source = read_volume(image_path)
            shown = read_volume(image_path, orient=SHOWN_ORIENTATION)
        depth = shown.array.shape[0]
        label = np.full(shown.array.shape, IGNORE_LABEL, np.uint8)
        volume_label = result_dir / "strong_label" / f"{stem}.nii.gz"
        png_label = result_dir / "strong_label" / f"{stem}.png"
        if not raster and volume_label.is_file():
            saved = read_mask_volume(volume_label, shown.geometry)
        elif raster and png_label.is_file():
            saved = (read_slice(png_label) > 0).astype(np.uint8)[None]
        else:
            raise InputError(
                "the saved strong label of an annotated image is missing",
                volume_label if not raster else png_label,
            )
        for index in sorted(slices):
            if 0 <= index < depth:
                label[index] = saved[index]
        tags_path = result_dir / "tags" / f"{stem}.csv"
        if tags_path.is_file():
            for index, tag in read_tags_csv(tags_path).items():
                if tag == 0 and 0 <= index < depth and index not in slices:
                    label[index] = 0
        labelled = int(sum(1 for i in range(depth) if (label[i] != IGNORE_LABEL).any()))
        array = label if shown is source else to_source_grid(label, shown.geometry, source.geometry)
        case = _case_id(stem)
        image_name = f"{case}_0000.nii.gz" if fmt == "nnunet" else f"{case}.nii.gz"
        write_volume(dataset_dir / "imagesTr" / image_name, source.array, like=source.geometry)
        write_volume(dataset_dir / "labelsTr" / f"{case}.nii.gz", array, like=source.geometry)
        cases.append(case)
        counts.append(labelled)
        training.append({"image": f"./imagesTr/{case}.nii.gz", "label": f"./labelsTr/{case}.nii.gz"})
        logger.info("exported %s: %d of %d slice(s) labelled", case, labelled, depth)
    if fmt == "nnunet":
        meta = {
            "channel_names": {"0": channel_name},
            "labels": {"background": 0, "target": 1, "ignore": IGNORE_LABEL},
            "numTraining": len(cases),
            "file_ending": ".nii.gz",
            "name": name,
            "description": "exported by wiml export from annotator results; label 2 = not annotated (ignored)",
        }
    else:
        meta = {
            "name": name,
            "description": "exported by wiml export from annotator results; label 2 = not annotated",
            "tensorImageSize": "3D",
            "modality": {"0": channel_name},
            "labels": {"0": "background", "1": "target", str(IGNORE_LABEL): "unlabelled"},
            "numTraining": len(cases),
            "numTest": 0,
            "training": training,
            "test": [],
        }
    atomic_write_text(dataset_dir / "dataset.json", json.dumps(meta, indent=2) + "\n")
    return ExportSummary(dataset_dir, cases, counts)
