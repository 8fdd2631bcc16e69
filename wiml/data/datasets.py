"""Finders for the dataset layouts WIML reads: they list cases (files per patient) without loading pixels.

Layouts (``layout`` name: what is expected under the root folder):

* ``lits``: LiTS 2017, ``volume-N.nii[.gz]`` and ``segmentation-N.nii[.gz]`` anywhere below the root (the
  download's ``Training Batch 1/2`` folders work as they are); labels 0 background, 1 liver, 2 tumour.
* ``brats2019``: ``HGG|LGG/<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz``; labels 0/1/2/4.
* ``brats2015``: ``<case>/{Flair,T1,T1c,T2}_subtrMeanDivStd.nii.gz`` + ``OTMultiClass.nii.gz`` +
  ``brainmask.nii.gz`` (the DeepMedic redistribution in ``../shared/data/brats2015``); labels 0..4.
* ``msd``: Medical Segmentation Decathlon task, ``imagesTr/``, ``labelsTr/`` and ``dataset.json``.
* ``dicom``: folders holding a CT DICOM series ``PATIENT_DICOM/`` and a mask series such as
  ``MASKS_DICOM/liver/`` (3D-IRCADb); the root itself or its sub-folders.
* ``slices``: 2-D slice folders, ``images/``+``masks/``, ``data/``+``label/`` or ``data_source/``+``label/``
  (anywhere below the root), or images directly in the root with masks in ``label/`` (the project's
  ``data_source/``); the patient id comes from the file name through a regular expression.

Every finder raises :class:`wiml.errors.InputError` for a missing root, an empty layout, or a mask
without its image.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

from wiml.data.io import SLICE_SUFFIXES, full_suffix, is_dicom_file, strip_suffix
from wiml.errors import InputError

logger = logging.getLogger(__name__)

LAYOUTS = ("lits", "brats2019", "brats2015", "msd", "dicom", "slices")


@dataclasses.dataclass(frozen=True)
class Channel:
    """One input channel of a volume case: a file (or DICOM folder) and, for 4-D files, the component."""

    name: str
    path: Path
    index: int | None = None


@dataclasses.dataclass(frozen=True)
class VolumeCase:
    """One patient's 3-D volume(s).

    Attributes:
        patient_id: patient identifier (used for the split and file names).
        channels: the input channels, stacked in this order.
        mask: label volume (or DICOM mask folder), or None.
        modality: ``ct`` (HU) or ``mr``.
        label_values: label values the mask may hold (None: not checked).
        body_mask: brain/body mask for the MR z-score (None: non-zero voxels).
        targets: named targets of this layout -> target expression (see :func:`target_mask`).
    """

    patient_id: str
    channels: tuple[Channel, ...]
    mask: Path | None
    modality: str
    label_values: tuple[int, ...] | None = None
    body_mask: Path | None = None


@dataclasses.dataclass(frozen=True)
class SliceItem:
    """One 2-D slice file and its mask file (or None)."""

    image: Path
    mask: Path | None


@dataclasses.dataclass(frozen=True)
class SliceCase:
    """One patient's 2-D slices from a slice folder, in file-name order."""

    patient_id: str
    items: tuple[SliceItem, ...]
    image_dir: Path
    mask_dir: Path | None


#: named targets per layout -> target expression for :func:`parse_target`.
TARGETS = {
    "lits": {"default": "liver", "liver": ">=1", "tumour": "==2", "tumor": "==2"},
    "brats2019": {"default": "whole_tumour", "whole_tumour": ">0", "tumour_core": "1,4", "enhancing": "4"},
    "brats2015": {"default": "whole_tumour", "whole_tumour": ">0", "tumour_core": "1,3,4", "enhancing": "4"},
    "msd": {"default": "foreground", "foreground": ">0"},
    "dicom": {"default": "foreground", "foreground": ">0"},
    "slices": {"default": "foreground", "foreground": ">0"},
}

#: default input channels per layout.
DEFAULT_CHANNELS = {"brats2019": ("flair",), "brats2015": ("flair",), "msd": ("0",)}

_BRATS2015_PREFIX = {"flair": "Flair", "t1c": "T1c", "t1ce": "T1c", "t1": "T1", "t2": "T2"}
_BRATS2019_SUFFIX = {"flair": "flair", "t1": "t1", "t1ce": "t1ce", "t1c": "t1ce", "t2": "t2"}
_SLICE_DIR_PAIRS = (
    ("images", "masks"),
    ("data", "label"),
    ("data_source", "label"),
    ("image", "mask"),
    ("imgs", "masks"),
)


def parse_target(expression: str):
    """Turn a target expression into a function label array -> bool array.

    Forms: ``>0``, ``>=1``, ``==2`` (comparisons with one integer) or ``1,3,4`` (label in the set).

    Raises:
        InputError: a malformed expression.
    """
    import numpy as np

    text = expression.replace(" ", "")
    m = re.fullmatch(r"(>=|>|==|<=|<)(-?\d+)", text)
    if m:
        op, value = m.group(1), int(m.group(2))
        ops = {">": np.greater, ">=": np.greater_equal, "==": np.equal, "<": np.less, "<=": np.less_equal}
        return lambda a: ops[op](a, value)
    if re.fullmatch(r"-?\d+(,-?\d+)*", text):
        values = [int(v) for v in text.split(",")]
        return lambda a: np.isin(a, values)
    raise InputError(f"target {expression!r}: expected a name, '>0', '>=1', '==2' or a list like '1,4'")


def resolve_target(layout: str, target: str) -> str:
    """Named target (``liver``, ``whole_tumour`` ...) or expression -> expression for ``layout``.

    Raises:
        InputError: an unknown name.
    """
    names = TARGETS.get(layout, {})
    name = target or "default"
    if name == "default":
        name = names.get("default", ">0")
    if name in names:
        return names[name]
    parse_target(name)  # raises for names this layout does not know
    return name


def _require_dir(root: Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise InputError("input folder not found", root)
    if not root.is_dir():
        raise InputError("expected a folder", root)
    if not any(root.iterdir()):
        raise InputError("empty folder", root)
    return root


def _visible(paths):
    return [p for p in paths if not p.name.startswith(".")]


def detect_layout(root: str | Path) -> str:
    """Guess the layout of ``root`` (one of :data:`LAYOUTS`).

    Raises:
        InputError: missing/empty folder, or nothing recognisable inside.
    """
    root = _require_dir(Path(root))
    if (root / "dataset.json").is_file() or (root / "imagesTr").is_dir():
        return "msd"
    if (root / "HGG").is_dir() or (root / "LGG").is_dir():
        return "brats2019"
    if next(iter(_visible(root.rglob("volume-*.nii*"))), None) is not None:
        return "lits"
    if next(iter(_visible(root.glob("*/OTMultiClass*"))), None) or next(
        iter(_visible(root.glob("OTMultiClass*"))), None
    ):
        return "brats2015"
    if (root / "PATIENT_DICOM").is_dir() or next(iter(root.glob("*/PATIENT_DICOM")), None) is not None:
        return "dicom"
    if _find_slice_groups(root):
        return "slices"
    raise InputError(
        "unrecognised layout; expected LiTS (volume-N.nii), BraTS 2019 (HGG/LGG), BraTS 2015 "
        "(OTMultiClass), MSD (imagesTr + dataset.json), DICOM (PATIENT_DICOM) or slice folders "
        "(images/+masks/, data/+label/)",
        root,
    )


# ----------------------------------------------------------------------------------------------- LiTS
_LITS_RE = re.compile(r"^(volume|segmentation)-(\d+)\.nii(\.gz)?$")


def find_lits(root: str | Path) -> list[VolumeCase]:
    """LiTS 2017: ``volume-N.nii[.gz]`` with ``segmentation-N.nii[.gz]`` anywhere below ``root``.

    Patient id: ``N`` zero-padded to 3 digits. Volumes without a segmentation (the LiTS test set) have
    ``mask=None``.

    Raises:
        InputError: missing/empty root, no volumes, a segmentation without its volume, a duplicate N.
    """
    root = _require_dir(Path(root))
    volumes, segs = {}, {}
    for path in sorted(_visible(root.rglob("*.nii*"))):
        m = _LITS_RE.match(path.name)
        if not m:
            continue
        table = volumes if m.group(1) == "volume" else segs
        key = int(m.group(2))
        if key in table:
            raise InputError(f"duplicate case {key}: also at {table[key]}", path)
        table[key] = path
    if not volumes and not segs:
        raise InputError("no LiTS files found (expected volume-N.nii[.gz] and segmentation-N.nii[.gz])", root)
    for key, seg in segs.items():
        if key not in volumes:
            raise InputError(f"mask without an image: expected volume-{key}.nii[.gz] beside it", seg)
    return [
        VolumeCase(f"{key:03d}", (Channel("ct", volumes[key]),), segs.get(key), "ct", (0, 1, 2))
        for key in sorted(volumes)
    ]


# ------------------------------------------------------------------------------------------ BraTS 2019
def find_brats2019(root: str | Path, channels: tuple[str, ...] | list[str] = ("flair",)) -> list[VolumeCase]:
    """BraTS 2019: ``HGG|LGG/<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz``; chosen channels stacked.

    Raises:
        InputError: missing/empty root, no case folders, an unknown channel, a missing channel file,
            a ``seg`` without the image files.
    """
    root = _require_dir(Path(root))
    channels = tuple(c.lower() for c in (channels or DEFAULT_CHANNELS["brats2019"]))
    for c in channels:
        if c not in _BRATS2019_SUFFIX:
            raise InputError(f"unknown BraTS channel {c!r}; expected some of {sorted(_BRATS2019_SUFFIX)}")
    case_dirs = sorted(
        d
        for grade in ("HGG", "LGG")
        if (root / grade).is_dir()
        for d in _visible((root / grade).iterdir())
        if d.is_dir()
    )
    if not case_dirs:
        raise InputError("no BraTS 2019 cases (expected HGG/<case>/ or LGG/<case>/ folders)", root)
    cases = []
    for d in case_dirs:

        def _file(suffix: str, d: Path = d) -> Path | None:
            for ext in (".nii.gz", ".nii"):
                p = d / f"{d.name}_{suffix}{ext}"
                if p.is_file():
                    return p
            return None

        seg = _file("seg")
        chans = []
        for c in channels:
            p = _file(_BRATS2019_SUFFIX[c])
            if p is None:
                what = "mask without an image" if seg is not None else "missing channel"
                raise InputError(f"{what}: expected {d.name}_{_BRATS2019_SUFFIX[c]}.nii.gz", d)
            chans.append(Channel(c, p))
        cases.append(VolumeCase(d.name, tuple(chans), seg, "mr", (0, 1, 2, 4)))
    return cases


# ------------------------------------------------------------------------------------------ BraTS 2015
def find_brats2015(root: str | Path, channels: tuple[str, ...] | list[str] = ("flair",)) -> list[VolumeCase]:
    """BraTS 2015 as in ``../shared/data/brats2015``: ``<case>/<Channel>_subtrMeanDivStd.nii.gz``.

    Channels: ``flair``, ``t1``, ``t1c`` (alias ``t1ce``), ``t2``. Mask ``OTMultiClass``, brain mask
    ``brainmask``.

    Raises:
        InputError: missing/empty root, no cases, unknown channel, missing channel file.
    """
    root = _require_dir(Path(root))
    channels = tuple(c.lower() for c in (channels or DEFAULT_CHANNELS["brats2015"]))
    for c in channels:
        if c not in _BRATS2015_PREFIX:
            raise InputError(
                f"unknown BraTS 2015 channel {c!r}; expected some of {sorted(_BRATS2015_PREFIX)}"
            )
    dirs = sorted(d for d in _visible(root.iterdir()) if d.is_dir() and list(d.glob("OTMultiClass*")))
    if not dirs:
        raise InputError("no BraTS 2015 cases (expected <case>/OTMultiClass.nii.gz)", root)
    cases = []
    for d in dirs:
        chans = []
        for c in channels:
            hits = sorted(p for p in d.glob(f"{_BRATS2015_PREFIX[c]}_*.nii*"))
            if not hits:
                raise InputError(
                    f"mask without an image: expected {_BRATS2015_PREFIX[c]}_*.nii.gz for channel {c}", d
                )
            chans.append(Channel(c, hits[0]))
        seg = sorted(d.glob("OTMultiClass*.nii*"))[0]
        brain = sorted(d.glob("brainmask*.nii*"))
        cases.append(
            VolumeCase(d.name, tuple(chans), seg, "mr", (0, 1, 2, 3, 4), brain[0] if brain else None)
        )
    return cases


# ------------------------------------------------------------------------------------------------ MSD
def find_msd(root: str | Path, channels: tuple[str, ...] | list[str] = ()) -> list[VolumeCase]:
    """Medical Segmentation Decathlon: ``imagesTr/<case>.nii.gz`` + ``labelsTr/<case>.nii.gz`` (+ dataset.json).

    ``dataset.json`` gives the modality (``CT`` -> HU window) and the label values; without it CT is
    assumed and labels are not checked. ``channels``: component indices of 4-D images (``["0", "2"]``).

    Raises:
        InputError: missing/empty root, no ``imagesTr``, a label without its image, malformed dataset.json.
    """
    root = _require_dir(Path(root))
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    if not images_dir.is_dir():
        raise InputError(
            "no imagesTr/ folder (expected an MSD task: imagesTr/, labelsTr/, dataset.json)", root
        )
    modality, label_values, n_modalities = "ct", None, 1
    meta_path = root / "dataset.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            mods = meta.get("modality", {"0": "CT"})
            n_modalities = len(mods)
            modality = "ct" if str(mods.get("0", "CT")).upper() == "CT" else "mr"
            label_values = tuple(sorted(int(k) for k in meta.get("labels", {}))) or None
        except (ValueError, AttributeError) as exc:
            raise InputError(f"malformed dataset.json ({exc})", meta_path) from exc
    indices = [int(c) for c in (channels or ["0"])]
    for i in indices:
        if i >= n_modalities:
            raise InputError(
                f"channel {i} out of range; dataset.json lists {n_modalities} modalities", meta_path
            )
    images = {strip_suffix(p): p for p in _visible(images_dir.glob("*.nii*"))}
    labels = {strip_suffix(p): p for p in _visible(labels_dir.glob("*.nii*"))} if labels_dir.is_dir() else {}
    if not images:
        raise InputError("no .nii/.nii.gz images", images_dir)
    for name, p in labels.items():
        if name not in images:
            raise InputError(f"mask without an image: expected imagesTr/{p.name}", p)
    cases = []
    for name in sorted(images):
        chans = tuple(Channel(str(i), images[name], i if n_modalities > 1 else None) for i in indices)
        cases.append(VolumeCase(name, chans, labels.get(name), modality, label_values))
    return cases


# ---------------------------------------------------------------------------------------------- DICOM
def find_dicom(
    root: str | Path, image_dir: str = "PATIENT_DICOM", mask_dir: str = "MASKS_DICOM/liver"
) -> list[VolumeCase]:
    """DICOM series per patient: ``<patient>/PATIENT_DICOM/`` and ``<patient>/MASKS_DICOM/liver/``.

    ``root`` may be one patient folder (holding ``image_dir``) or a folder of patient folders. The patient
    id is the patient folder's name. A mask series is optional.

    Raises:
        InputError: missing/empty root, no ``image_dir`` found, an image folder without DICOM files.
    """
    root = _require_dir(Path(root))
    patients = (
        [root]
        if (root / image_dir).is_dir()
        else sorted(d for d in _visible(root.iterdir()) if (d / image_dir).is_dir())
    )
    if not patients:
        raise InputError(f"no DICOM patient folder (expected {image_dir}/ here or in sub-folders)", root)
    cases = []
    for d in patients:
        series = d / image_dir
        if not any(is_dicom_file(p) for p in series.iterdir() if p.is_file()):
            raise InputError("no DICOM files (expected a CT series)", series)
        mask = d / mask_dir if mask_dir and (d / mask_dir).is_dir() else None
        cases.append(VolumeCase(d.name, (Channel("ct", series),), mask, "ct", (0, 1, 255)))
    return cases


# -------------------------------------------------------------------------------------------- slices
def _find_slice_groups(root: Path, image_dir: str = "", mask_dir: str = "") -> list[tuple[Path, Path | None]]:
    pairs = [(image_dir, mask_dir)] if image_dir else _SLICE_DIR_PAIRS
    groups = []
    candidates = [root] + sorted(d for d in root.rglob("*") if d.is_dir() and not d.name.startswith("."))
    for parent in candidates:
        for img, msk in pairs:
            if (parent / img).is_dir():
                groups.append((parent / img, (parent / msk) if msk and (parent / msk).is_dir() else None))
                break
    if not groups and not image_dir and _slice_files(root):
        # images directly in root, masks in a sub-folder (the project's data_source/ + data_source/label/)
        inner = next((root / m for m in ("label", "labels", "masks", "mask") if (root / m).is_dir()), None)
        groups.append((root, inner))
    return groups


def _slice_files(folder: Path) -> dict[str, Path]:
    return {
        strip_suffix(p): p
        for p in sorted(_visible(folder.iterdir()))
        if p.is_file() and full_suffix(p) in SLICE_SUFFIXES
    }


def _natural_key(text: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def find_slice_folders(
    root: str | Path, patient_regex: str = "", image_dir: str = "", mask_dir: str = ""
) -> list[SliceCase]:
    """2-D slice folders below ``root``: ``images/``+``masks/``, ``data/``+``label/``, ``data_source/``+``label/``.

    A mask has the same file stem as its image (any of PNG/JPEG/BMP/TIFF). The patient id is the named
    group ``patient`` (or group 1) of ``patient_regex`` searched in the file stem; without a pattern every
    slice is its own patient. Where several folder pairs are found (e.g. ``wiml_samples``), the id is
    prefixed with the pair's parent folder name.

    Args:
        root: folder holding the pair(s).
        patient_regex: e.g. ``^[a-z]+_(?P<patient>\\d+)_\\d+$`` for ``flipped_10001_103.jpg``.
        image_dir, mask_dir: folder names to use instead of the known pairs.

    Raises:
        InputError: missing/empty root, no slice folder pair, an image folder without images, a mask
            without an image, a file name that does not match ``patient_regex``.
    """
    root = _require_dir(Path(root))
    groups = _find_slice_groups(root, image_dir, mask_dir)
    if not groups:
        raise InputError(
            "no slice folders (expected images/+masks/, data/+label/ or data_source/+label/)", root
        )
    regex = re.compile(patient_regex) if patient_regex else None
    by_patient: dict[str, list[SliceItem]] = {}
    dirs: dict[str, tuple[Path, Path | None]] = {}
    for img_dir, msk_dir in groups:
        images = _slice_files(img_dir)
        if not images:
            raise InputError(f"no 2-D images (expected files ending in {', '.join(SLICE_SUFFIXES)})", img_dir)
        masks = _slice_files(msk_dir) if msk_dir is not None else {}
        for stem, path in masks.items():
            if stem not in images:
                raise InputError(f"mask without an image: expected {img_dir.name}/{stem}.* beside it", path)
        prefix = f"{img_dir.parent.name}-" if len(groups) > 1 else ""
        for stem in sorted(images, key=_natural_key):
            if regex is None:
                pid = stem
            else:
                m = regex.search(stem)
                if m is None:
                    raise InputError(
                        f"file name does not match patient_regex {patient_regex!r}", images[stem]
                    )
                pid = (
                    m.group("patient") if "patient" in regex.groupindex else m.group(1 if regex.groups else 0)
                )
            pid = re.sub(r"[^A-Za-z0-9._-]+", "-", prefix + pid)
            by_patient.setdefault(pid, []).append(SliceItem(images[stem], masks.get(stem)))
            dirs[pid] = (img_dir, msk_dir)
    return [SliceCase(pid, tuple(items), *dirs[pid]) for pid, items in sorted(by_patient.items())]


def find_cases(
    root: str | Path,
    layout: str = "auto",
    channels: tuple[str, ...] | list[str] = (),
    patient_regex: str = "",
    image_dir: str = "",
    mask_dir: str = "",
    dicom_image_dir: str = "PATIENT_DICOM",
    dicom_mask_dir: str = "MASKS_DICOM/liver",
) -> tuple[str, list[VolumeCase] | list[SliceCase]]:
    """Detect (or take) the layout of ``root`` and list its cases.

    Returns:
        (layout, cases).

    Raises:
        InputError: see the finder of each layout; an unknown layout name.
    """
    root = Path(root)
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "lits":
        return layout, find_lits(root)
    if layout == "brats2019":
        return layout, find_brats2019(root, tuple(channels))
    if layout == "brats2015":
        return layout, find_brats2015(root, tuple(channels))
    if layout == "msd":
        return layout, find_msd(root, tuple(channels))
    if layout == "dicom":
        return layout, find_dicom(root, dicom_image_dir, dicom_mask_dir)
    if layout == "slices":
        return layout, find_slice_folders(root, patient_regex, image_dir, mask_dir)
    raise InputError(f"unknown layout {layout!r}; expected auto or one of {', '.join(LAYOUTS)}")
