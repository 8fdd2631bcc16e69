"""Open an image for annotation: a PNG/JPEG slice, a NIfTI volume, a DICOM series or a prepared slice (Qt-free).

Every input becomes an :class:`AnnotationImage`: a (D, H, W) float32 stack of slices in the source units
(HU for CT, grey values for PNG/JPEG), shown in ``wiml prepare``'s orientation; the source geometry for
writing the strong label back as NIfTI; the ground truth when a mask of the same name sits in a ``label/``
folder beside the image (``<dir>/label/`` or ``<dir>/../label/``) or, for a prepared slice, in its NPZ; and
how to scale the slice for the weak model (as ``wiml prepare`` scaled its training data) and for display.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np

from wiml.data.io import (
    SLICE_SUFFIXES,
    Geometry,
    orientation_code,  # noqa: F401  (re-exported: callers found it here before it moved to wiml.data.io)
    read_slice,
    read_volume,
    reorient,
    strip_suffix,
)
from wiml.data.io import VOLUME_SUFFIXES as IO_VOLUME_SUFFIXES
from wiml.data.prepare import PrepareConfig
from wiml.errors import InputError

logger = logging.getLogger(__name__)

#: file suffixes the annotator opens as 2-D slices / as volumes (wiml.data.io reads both).
RASTER_SUFFIXES = SLICE_SUFFIXES
VOLUME_SUFFIXES = tuple(s for s in IO_VOLUME_SUFFIXES if s != ".npz")
#: folder names searched for a ground-truth mask of the same name, beside the image and one level up.
LABEL_FOLDERS = ("label", "labels", "masks")
#: the (low, high) HU window ``wiml prepare`` scales CT to [0, 1] with for the network ([-100, 200] HU).
PREPARE_WINDOW_HU: tuple[float, float] = (
    float(PrepareConfig().window_hu[0]),
    float(PrepareConfig().window_hu[1]),
)
#: orientation ``wiml prepare`` gives volumes before slicing (the weak model saw its slices that way).
PREPARE_ORIENTATION: str | None = PrepareConfig().orient
#: default CT window (level, width) in HU for display and refinement: the same window.
CT_WINDOW_HU = (
    (PREPARE_WINDOW_HU[0] + PREPARE_WINDOW_HU[1]) / 2.0,
    PREPARE_WINDOW_HU[1] - PREPARE_WINDOW_HU[0],
)


@dataclasses.dataclass
class AnnotationImage:
    """An image opened for annotation.

    Attributes:
        path: the file (or the DICOM series folder) that was opened.
        name: stem of the result files (``1`` for ``1.png``, ``volume-3`` for ``volume-3.nii.gz``).
        volume: (D, H, W) float32 slices in source units (D = 1 for a 2-D image).
        is_volume: True for NIfTI / DICOM input (strong labels are then written as NIfTI).
        is_ct: True when the values are Hounsfield units (a CT window is offered).
        reference: geometry (:class:`wiml.data.io.Geometry`) of the volume as shown, reoriented like
            ``wiml prepare`` does (LPS: row 0 anterior, column 0 patient right, slices inferior to superior),
            or None for a 2-D image.
        source_geometry: geometry of the volume as stored in the file (strong labels are written back in it).
        spacing_mm: (row, col) pixel spacing in mm, or None when the source has no physical geometry.
        window: default (level, width) in source units; also the normalisation of the analysis image.
        normalization: how ``wiml prepare`` scales this kind of input for the network: ``window`` (CT, HU
            window), ``zscore`` (MR volume, per volume inside the non-zero voxels), ``unit`` (2-D slice
            files, grey value / ``value_max``) or ``prepared`` (already scaled).
        value_max: maximum of the file's integer dtype (255 for 8-bit), 1.0 for float input.
        prepared: for a prepared slice (``wiml prepare``'s NPZ), its (C, H, W) float32 image, which is the
            network input as it is (``normalization`` is then ``prepared``); None otherwise.
        patient_id, prepared_index: patient and slice index of a prepared slice (from its name
            ``<patient>_<slice:04d>``); None otherwise.
        ground_truth: (D, H, W) uint8 {0, 1} mask, or None.
        ground_truth_path: where the ground truth came from, or None.
    """

    path: Path
    name: str
    volume: np.ndarray
    is_volume: bool
    is_ct: bool
    reference: Geometry | None
    source_geometry: Geometry | None
    spacing_mm: tuple[float, float] | None
    window: tuple[float, float]
    normalization: str = "unit"
    value_max: float = 1.0
    prepared: np.ndarray | None = None
    patient_id: str | None = None
    prepared_index: int | None = None
    ground_truth: np.ndarray | None = None
    ground_truth_path: Path | None = None

    @property
    def depth(self) -> int:
        """Number of slices D."""
        return int(self.volume.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of one slice in px."""
        return int(self.volume.shape[1]), int(self.volume.shape[2])


def image_stem(path: Path) -> str:
    """File name without its (possibly double, ``.nii.gz``) suffix; a folder keeps its name."""
    path = Path(path)
    return path.name if path.is_dir() else strip_suffix(path)


def is_openable(path: Path) -> bool:
    """Whether ``path`` looks like something :func:`open_image` reads (by suffix; folders count)."""
    path = Path(path)
    if path.is_dir():
        return True
    name = path.name.lower()
    return name.endswith(RASTER_SUFFIXES + VOLUME_SUFFIXES + (".dcm", ".npz"))


def list_images(folder: Path) -> list[Path]:
    """Openable files directly inside ``folder`` (PNG/JPEG/NIfTI/...), in natural order (2 before 10)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = [
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and p.name.lower().endswith(RASTER_SUFFIXES + VOLUME_SUFFIXES + (".npz",))
    ]

    def key(p: Path):
        return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]

    return sorted(files, key=key)


def _as_stack(arr: np.ndarray, path: Path) -> np.ndarray:
    """(H, W) or (D, H, W) array -> (D, H, W) float32."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InputError(f"expected a 2-D slice or a 3-D volume, got an array of shape {arr.shape}", path)
    if arr.shape[1] < 2 or arr.shape[2] < 2:
        raise InputError(f"slice of {arr.shape[1]} x {arr.shape[2]} px is too small to annotate", path)
    return np.ascontiguousarray(arr, dtype=np.float32)


def _read(path: Path, volume: bool) -> tuple[np.ndarray, np.dtype, Geometry | None, Geometry | None]:
    """(D, H, W) float32 stack, the file's dtype, and for a volume its geometry as shown (reoriented to
    ``wiml prepare``'s orientation) and as stored in the file (None, None for a 2-D slice)."""
    if volume:
        vol = read_volume(path)
        array, shown = vol.array, vol.geometry
        if PREPARE_ORIENTATION:
            array, shown = reorient(array, vol.geometry, PREPARE_ORIENTATION)
        return _as_stack(array, path), vol.array.dtype, shown, vol.geometry
    arr = read_slice(path)
    return _as_stack(arr, path), arr.dtype, None, None


def _default_window(volume: np.ndarray, is_ct: bool, raw_dtype: np.dtype) -> tuple[float, float]:
    if is_ct:
        return CT_WINDOW_HU
    if raw_dtype == np.uint8:
        return 127.5, 255.0
    lo, hi = np.percentile(volume, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(volume.min()), float(volume.max()) + 1.0
    return float((lo + hi) / 2), float(hi - lo)


#: file names of the reference beside a BraTS image (2019+: ``<case>_seg``; 2015: ``OTMultiClass``).
BRATS_LABEL_NAMES = ("OTMultiClass",)
#: organ folder preferred when a DICOM mask folder (``MASKS_DICOM``) holds several.
PREFERRED_ORGANS = ("liver", "tumor", "livertumor")


def _beside(path: Path) -> Path | None:
    """The reference of the layouts ``wiml prepare`` reads, found beside the image.

    * DICOM series ``<patient>/PATIENT_DICOM`` -> ``<patient>/MASKS_DICOM/<organ>`` (IRCADb; ``liver`` preferred
      when there are several organs);
    * BraTS ``<case>_flair.nii.gz`` (any modality) -> ``<case>_seg.nii.gz``; BraTS 2015
      ``<case>/Flair_subtrMeanDivStd.nii.gz`` -> ``<case>/OTMultiClass.nii.gz``;
    * MSD ``imagesTr/<case>.nii.gz`` -> ``labelsTr/<case>.nii.gz``;
    * LiTS ``volume-N.nii`` -> ``segmentation-N.nii``.
    """
    name = path.name
    parent = path.parent
    if path.is_dir():
        masks = parent / "MASKS_DICOM"
        if masks.is_dir():
            organs = sorted(p for p in masks.iterdir() if p.is_dir())
            for organ in PREFERRED_ORGANS:
                if (masks / organ).is_dir():
                    return masks / organ
            if organs:
                logger.info(
                    "reference: %s holds %d organ folders; using %s", masks, len(organs), organs[0].name
                )
                return organs[0]
        return None
    stem = image_stem(path)
    suffix = name[len(stem) :]
    candidates = []
    m = re.fullmatch(r"(.*_)(flair|t1|t1ce|t2)", stem, flags=re.IGNORECASE)
    if m:
        candidates.append(parent / f"{m.group(1)}seg{suffix}")
    if re.search(r"(flair|t1c?|t2)_", stem, flags=re.IGNORECASE) or "subtrMeanDivStd" in stem:
        candidates += [parent / f"{n}{suffix}" for n in BRATS_LABEL_NAMES]
    if parent.name == "imagesTr" or parent.name == "imagesTs":
        candidates.append(parent.parent / parent.name.replace("images", "labels") / name)
    m = re.fullmatch(r"volume-(\d+)", stem)
    if m:
        candidates.append(parent / f"segmentation-{m.group(1)}{suffix}")
    for cand in candidates:
        if cand.exists() and cand != path:
            return cand
    return None


def find_ground_truth(path: Path) -> Path | None:
    """The reference (ground truth) of an image, or None.

    First the layouts ``wiml prepare`` reads (a DICOM ``MASKS_DICOM/<organ>`` series beside the image
    series, BraTS ``seg`` / ``OTMultiClass`` beside the image, MSD ``labelsTr``, LiTS ``segmentation-N``), then a
    mask of the same name in ``<dir>/label/`` or ``<dir>/../label/`` (also ``labels/``, ``masks/``); there the
    same file name is preferred, and a file with the same stem and another image suffix is accepted (a JPEG
    slice with a PNG mask).
    """
    path = Path(path)
    found = _beside(path)
    if found is not None:
        return found
    stem = image_stem(path)
    parents = [path.parent, path.parent.parent]
    for parent in parents:
        for folder in LABEL_FOLDERS:
            cand_dir = parent / folder
            if not cand_dir.is_dir() or cand_dir == path.parent:
                continue
            same = cand_dir / path.name
            if same.exists():
                return same
            for cand in sorted(cand_dir.iterdir()):
                if image_stem(cand) == stem and is_openable(cand):
                    return cand
    return None


def read_ground_truth(gt_path: Path, shape: tuple[int, int, int], volume: bool) -> np.ndarray | None:
    """Read a reference mask for an image of ``shape`` (D, H, W), oriented like the image as shown.

    Label maps count every label > 0 as foreground; 8-bit raster masks (0/255, JPEG noise) are thresholded at
    127. Returns (D, H, W) uint8 {0, 1}, or None (logged) when the size differs from the image's.

    Raises:
        InputError: the file cannot be read.
    """
    gt_path = Path(gt_path)
    raster = gt_path.is_file() and gt_path.name.lower().endswith(RASTER_SUFFIXES)
    arr, _dtype, _shown, _source = _read(gt_path, volume and not raster)
    if arr.shape != tuple(shape):
        logger.warning(
            "ignoring ground truth %s: shape %s does not match the image %s", gt_path, arr.shape, shape
        )
        return None
    threshold = 127.0 if (raster and arr.max() > 1) else 0.0
    return (arr > threshold).astype(np.uint8)


def open_image(path: str | Path) -> AnnotationImage:
    """Open a slice or a volume for annotation.

    Args:
        path: a PNG/JPEG/BMP/TIFF slice, a NIfTI (``.nii``/``.nii.gz``) / MHA / NRRD volume, or a folder holding
            one DICOM series (a single ``.dcm`` file opens its folder's series).

    Returns:
        The :class:`AnnotationImage`, with the ground truth when one is found (:func:`find_ground_truth`).

    Raises:
        InputError: the path does not exist, is not an image, or cannot be read.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise InputError("no such file or folder", path)
    if path.is_file() and path.name.lower().endswith(".dcm"):
        path = path.parent
    if path.is_file() and not is_openable(path):
        raise InputError(
            "unsupported file type; expected PNG/JPEG, NIfTI (.nii/.nii.gz), a DICOM folder or a "
            "prepared slice (.npz)",
            path,
        )
    if path.name.lower().endswith(".npz") and path.is_file():
        return open_prepared_slice(path)
    volume = path.is_dir() or path.name.lower().endswith(VOLUME_SUFFIXES)

    stack, dtype, geometry, source_geometry = _read(path, volume)
    is_ct = bool(volume and stack.min() < -500.0)
    spacing = (float(geometry.spacing[1]), float(geometry.spacing[0])) if geometry is not None else None
    window = _default_window(stack, is_ct, dtype)
    normalization = "window" if is_ct else "zscore" if volume else "unit"
    value_max = float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0
    result = AnnotationImage(
        path=path,
        name=image_stem(path),
        volume=stack,
        is_volume=volume,
        is_ct=is_ct,
        reference=geometry,
        source_geometry=source_geometry,
        spacing_mm=spacing,
        window=window,
        normalization=normalization,
        value_max=value_max,
    )
    gt_path = find_ground_truth(path)
    if gt_path is not None:
        try:
            result.ground_truth = read_ground_truth(gt_path, stack.shape, volume)
            result.ground_truth_path = gt_path if result.ground_truth is not None else None
        except InputError as exc:
            logger.warning("ignoring unreadable ground truth: %s", exc)
    logger.info(
        "opened %s: %d slice(s) of %d x %d px%s",
        path,
        stack.shape[0],
        stack.shape[1],
        stack.shape[2],
        f", ground truth {gt_path}" if result.ground_truth is not None else "",
    )
    return result


def open_prepared_slice(path: Path) -> AnnotationImage:
    """Open a prepared slice (``wiml prepare``'s ``slices/<patient>/<patient>_<slice:04d>.npz``).

    The network sees the stored (C, H, W) image as it is; the annotator shows and refines channel 0; the
    stored mask is the ground truth. Strong labels are then named ``<patient>_<slice:04d>`` at the prepared
    resolution, which is what ``wiml train-msl`` reads from a WIA ``result/`` folder.

    Raises:
        InputError: not a prepared slice NPZ.
    """
    from wiml.data.slices import load_slice

    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
    if keys & {"spacing", "origin", "direction"}:
        raise InputError(
            "this NPZ is a volume (it stores a geometry); expected a prepared slice with arrays "
            "'image' (C, H, W) and optional 'mask'",
            path,
        )
    image, mask = load_slice(path)
    channel0 = image[0]
    lo, hi = (
        (0.0, 1.0)
        if channel0.min() >= 0.0 and channel0.max() <= 1.0
        else tuple(float(v) for v in np.percentile(channel0, [0.5, 99.5]))
    )
    if hi <= lo:
        hi = lo + 1.0
    result = AnnotationImage(
        path=path,
        name=image_stem(path),
        volume=_as_stack(channel0, path),
        is_volume=False,
        is_ct=False,
        reference=None,
        source_geometry=None,
        spacing_mm=None,
        window=((lo + hi) / 2.0, hi - lo),
        normalization="prepared",
        prepared=image,
    )
    match = re.fullmatch(r"(.+)_(\d{4,})", result.name)
    if match:
        result.patient_id, result.prepared_index = match.group(1), int(match.group(2))
    if mask is not None:
        result.ground_truth = (mask > 0).astype(np.uint8)[None]
        result.ground_truth_path = path
    logger.info("opened prepared slice %s: %d channel(s) of %d x %d px", path, *image.shape)
    return result


def normalise(slice_: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Map source values through a (level, width) window to float32 in [0, 1].

    Args:
        slice_: (H, W) values in source units (HU for CT).
        window: (level, width) in the same units; width > 0.

    Returns:
        (H, W) float32 in [0, 1].
    """
    level, width = float(window[0]), max(float(window[1]), 1e-6)
    lo = level - width / 2.0
    return np.clip((np.asarray(slice_, np.float32) - lo) / width, 0.0, 1.0).astype(np.float32)
