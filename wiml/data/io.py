"""Reading and writing medical images with SimpleITK: volumes with their geometry, 2-D slices, NPZ.

Supported inputs:

* volumes: NIfTI (``.nii``, ``.nii.gz``), MetaImage (``.mha``, ``.mhd``), NRRD (``.nrrd``, ``.nhdr``), a DICOM
  series (a folder of DICOM files; stored values are rescaled to HU by SimpleITK), NPZ (array ``image`` plus
  optional ``spacing``/``origin``/``direction``);
* 2-D slices: PNG / JPEG / BMP / TIFF, 8- or 16-bit; RGB(A) images whose colour channels are equal (as saved by
  many tools for grey CT slices) are read as grey with their values unchanged.

Arrays follow NumPy order: a volume is (Z, Y, X) = (slice, row, col); a slice is (H, W) = (row, col).
Geometry follows SimpleITK order: ``spacing`` and ``origin`` are (x, y, z) in mm, ``direction`` is the
row-major 3x3 cosine matrix. Every writer is atomic (temporary file + rename, :func:`wiml.utils.atomic_path`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from wiml.errors import InputError, OutputError
from wiml.utils import atomic_path

logger = logging.getLogger(__name__)

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr", ".npz")
SLICE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
IMAGE_SUFFIXES = VOLUME_SUFFIXES + SLICE_SUFFIXES


def full_suffix(path: str | Path) -> str:
    """Lower-case suffix with ``.nii.gz`` kept whole (``a/b.NII.GZ`` -> ``.nii.gz``)."""
    name = Path(path).name.lower()
    for two in (".nii.gz",):
        if name.endswith(two):
            return two
    return Path(name).suffix


def strip_suffix(path: str | Path) -> str:
    """File name without its (possibly double) image suffix: ``volume-3.nii.gz`` -> ``volume-3``."""
    name = Path(path).name
    suffix = full_suffix(path)
    return name[: len(name) - len(suffix)] if suffix else name


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Physical placement of a volume (SimpleITK convention).

    Attributes:
        size: (x, y, z) voxels.
        spacing: (x, y, z) mm.
        origin: (x, y, z) mm of the first voxel's centre.
        direction: 9 direction cosines, row-major.
    """

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def from_image(cls, image: sitk.Image) -> Geometry:
        return cls(
            tuple(int(s) for s in image.GetSize()),
            tuple(float(s) for s in image.GetSpacing()),
            tuple(float(o) for o in image.GetOrigin()),
            tuple(float(d) for d in image.GetDirection()),
        )

    def apply_to(self, image: sitk.Image) -> sitk.Image:
        """Copy spacing, origin and direction onto ``image`` (in place) and return it."""
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    def to_dict(self) -> dict:
        return {
            "size": list(self.size),
            "spacing": list(self.spacing),
            "origin": list(self.origin),
            "direction": list(self.direction),
        }


@dataclasses.dataclass
class Volume:
    """A 3-D (or 2-D) image as a NumPy array plus its geometry.

    Attributes:
        array: (Z, Y, X) (or (H, W)) array, the file's own dtype.
        geometry: spacing / origin / direction / size of ``array`` (after any reorientation).
        path: where it was read from (None for arrays made in memory).
        source_geometry: the geometry as stored in the file, before ``read_volume(..., orient=)``
            reoriented it (equal to ``geometry`` when nothing was reoriented; None for arrays made in memory).
    """

    array: np.ndarray
    geometry: Geometry
    path: Path | None = None
    source_geometry: Geometry | None = None

    @property
    def spacing_zyx(self) -> tuple[float, ...]:
        """Spacing in array order, (slice, row, col) mm."""
        return tuple(reversed(self.geometry.spacing))


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError("file or folder not found", path)


def is_dicom_file(path: Path) -> bool:
    """True when ``path`` is a file starting with the DICOM preamble (``DICM`` at byte 128)."""
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _read_dicom_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise InputError("no DICOM series found (expected a folder of DICOM files of one series)", folder)
    if len(series) > 1:
        logger.warning("%s holds %d DICOM series; reading the largest", folder, len(series))
    files = max((reader.GetGDCMSeriesFileNames(str(folder), sid) for sid in series), key=len)
    reader.SetFileNames(files)
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"unreadable DICOM series ({_first_line(exc)})", folder) from exc


def _first_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "ERROR" in ln or "Exception" in ln or "Unable" in ln]
    return (useful or lines or [exc.__class__.__name__])[-1][:200]


def _read_npz(path: Path) -> sitk.Image:
    try:
        with np.load(path, allow_pickle=False) as data:
            key = "image" if "image" in data.files else (data.files[0] if len(data.files) == 1 else None)
            if key is None:
                raise InputError(f"NPZ holds {data.files}; expected an array named 'image'", path)
            array = np.asarray(data[key])
            meta = {
                k: np.asarray(data[k], dtype=float).ravel()
                for k in ("spacing", "origin", "direction")
                if k in data.files
            }
    except (OSError, ValueError) as exc:
        raise InputError(f"not a readable NPZ file ({exc})", path) from exc
    if array.ndim not in (2, 3):
        raise InputError(f"NPZ 'image' must be 2-D or 3-D, got shape {array.shape}", path)
    image = sitk.GetImageFromArray(array)
    if "spacing" in meta:
        image.SetSpacing(tuple(meta["spacing"]))
    if "origin" in meta:
        image.SetOrigin(tuple(meta["origin"]))
    if "direction" in meta:
        image.SetDirection(tuple(meta["direction"]))
    return image


def read_image(path: str | Path) -> sitk.Image:
    """Read any supported image (file or DICOM-series folder) as a ``SimpleITK.Image``.

    Args:
        path: an image file, or a folder holding one DICOM series.

    Returns:
        The image with its geometry (DICOM: rescaled to HU by the rescale slope/intercept).

    Raises:
        InputError: missing path, empty folder, a folder without DICOM, or a file that is not an image.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        if not any(p.is_file() for p in path.iterdir()):
            raise InputError("empty folder (expected a DICOM series)", path)
        return _read_dicom_series(path)
    if full_suffix(path) == ".npz":
        return _read_npz(path)
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(
            f"not a readable image (expected one of {', '.join(IMAGE_SUFFIXES)} or DICOM): "
            f"{_first_line(exc)}",
            path,
        ) from exc


def check_finite(array: np.ndarray, path: str | Path | None = None) -> None:
    """Raise InputError when a floating-point array holds NaN or infinite values."""
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int(array.size - np.isfinite(array).sum())
        raise InputError(f"{bad} NaN/inf voxel(s); expected finite intensities", path)


def nifti_nonfinite_count(path: str | Path) -> int:
    """Count NaN/inf values stored in a floating-point NIfTI file (0 for integer data).

    SimpleITK's NIfTI reader (ITK < 6) silently turns NaN and +-inf into 0 (ITK pull request #6683), so
    :func:`read_volume` checks the stored bytes of float NIfTI files itself.
    """
    import gzip
    import struct

    path = Path(path)
    opener = gzip.open if full_suffix(path) == ".nii.gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 348:
        return 0
    for endian in ("<", ">"):
        sizeof_hdr = struct.unpack(endian + "i", data[:4])[0]
        if sizeof_hdr in (348, 540):
            break
    else:
        return 0
    if sizeof_hdr == 348:
        datatype = struct.unpack(endian + "h", data[70:72])[0]
        offset = int(struct.unpack(endian + "f", data[108:112])[0])
    else:
        datatype = struct.unpack(endian + "h", data[12:14])[0]
        offset = int(struct.unpack(endian + "q", data[168:176])[0])
    dtype = {16: "f4", 64: "f8"}.get(datatype)
    if dtype is None:
        return 0
    item = np.dtype(endian + dtype)
    body = data[offset : offset + (len(data) - offset) // item.itemsize * item.itemsize]
    values = np.frombuffer(body, dtype=item)
    return int(values.size - np.count_nonzero(np.isfinite(values)))


def _nifti1_header(path: Path) -> bytes | None:
    """The 348-byte NIfTI-1 header of ``path`` (None for NIfTI-2 or a file too short)."""
    import gzip

    opener = gzip.open if full_suffix(path) == ".nii.gz" else open
    try:
        with opener(path, "rb") as fh:
            header = fh.read(348)
    except OSError:
        return None
    return header if len(header) == 348 else None


def nifti_qform_sform(path: str | Path) -> tuple[int, np.ndarray, int, np.ndarray] | None:
    """The qform and sform of a NIfTI-1 file as 4x4 RAS affines (voxel index -> mm).

    Returns:
        ``(qform_code, qform, sform_code, sform)``, or None for a file that is not NIfTI-1.
    """
    import struct

    header = _nifti1_header(Path(path))
    if header is None:
        return None
    for endian in ("<", ">"):
        if struct.unpack(endian + "i", header[:4])[0] == 348:
            break
    else:
        return None
    qform_code, sform_code = struct.unpack(endian + "hh", header[252:256])
    pixdim = struct.unpack(endian + "8f", header[76:108])
    b, c, d, qx, qy, qz = struct.unpack(endian + "6f", header[256:280])
    a = float(np.sqrt(max(0.0, 1.0 - (b * b + c * c + d * d))))
    rot = np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
        ]
    )
    qfac = -1.0 if pixdim[0] < 0 else 1.0
    qform = np.eye(4)
    qform[:3, :3] = rot * np.array([pixdim[1], pixdim[2], qfac * pixdim[3]])
    qform[:3, 3] = (qx, qy, qz)
    sform = np.eye(4)
    sform[:3, :] = np.array(struct.unpack(endian + "12f", header[280:328])).reshape(3, 4)
    return int(qform_code), qform, int(sform_code), sform


def _ras_affine(image: sitk.Image) -> np.ndarray:
    """The 4x4 RAS affine (voxel index -> mm) of the first three axes of a SimpleITK image."""
    dim = image.GetDimension()
    direction = np.array(image.GetDirection()).reshape(dim, dim)[:3, :3]
    affine = np.eye(4)
    affine[:3, :3] = direction * np.array(image.GetSpacing()[:3])
    affine[:3, 3] = image.GetOrigin()[:3]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # ITK is LPS, NIfTI is RAS


def warn_qform_sform(path: str | Path, image: sitk.Image, tol_mm: float = 1e-3) -> str | None:
    """Log a warning when a NIfTI file's qform and sform (both set) place the voxels differently.

    SimpleITK picks one of them by ITK's rules (the sform when its code is 1, scanner-based, else the qform);
    the warning names the file, the largest difference and the transform that was used.

    Returns:
        The warning text, or None when they agree (or one of them is unset).
    """
    forms = nifti_qform_sform(path)
    if forms is None:
        return None
    qcode, qform, scode, sform = forms
    if qcode <= 0 or scode <= 0:
        return None
    diff = float(np.abs(qform - sform).max())
    if diff <= tol_mm + 1e-5 * float(np.abs(sform).max()):
        return None
    used = _ras_affine(image)
    q_err, s_err = float(np.abs(used - qform).max()), float(np.abs(used - sform).max())
    name = f"the sform (sform_code {scode})" if s_err < q_err else f"the qform (qform_code {qcode})"
    text = (
        f"{path}: the NIfTI qform and sform disagree (by up to {diff:.4g} mm in the affine); "
        f"SimpleITK used {name}, and WIML's outputs follow it"
    )
    logger.warning(text)
    return text


def orientation_code(geometry: Geometry) -> str:
    """DICOM orientation code (e.g. ``LPS``) of a volume's direction cosines (the nearest axes if oblique)."""
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(geometry.direction)


def reorient(array: np.ndarray, geometry: Geometry, code: str) -> tuple[np.ndarray, Geometry]:
    """Reorient a (Z, Y, X) array with its geometry to DICOM orientation ``code`` (physical positions kept).

    Only axes are permuted and flipped (no interpolation), so reorienting back is exact.

    Returns:
        (array, geometry) in the new orientation; unchanged when the volume already has it.
    """
    if orientation_code(geometry) == code:
        return array, geometry
    image = geometry.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(array)))
    image = sitk.DICOMOrient(image, code)
    return sitk.GetArrayFromImage(image), Geometry.from_image(image)


def to_source_grid(array: np.ndarray, shown: Geometry, source: Geometry) -> np.ndarray:
    """A (Z, Y, X) array on a reoriented grid (``shown``) -> the same voxels in the file's own array order.

    ``shown`` must be ``source`` reoriented by :func:`reorient` / ``read_volume(..., orient=)``; written with
    ``write_volume(path, result, like=source)`` the result is voxel-aligned with the source file, for any
    orientation (oblique included: its axes are permuted and flipped like the nearest orthogonal ones).

    Raises:
        InputError: the array does not have ``shown``'s size, or ``shown`` is not a reorientation of ``source``.
    """
    if tuple(reversed(np.shape(array))) != tuple(shown.size):
        raise InputError(
            f"array shape {np.shape(array)} (z, y, x) does not match the grid {tuple(shown.size)}"
        )
    out, back = reorient(array, shown, orientation_code(source))
    if tuple(back.size) != tuple(source.size) or not np.allclose(back.direction, source.direction, atol=1e-4):
        raise InputError(
            f"the reoriented grid (size {tuple(shown.size)}) is not a reorientation of the source grid "
            f"(size {tuple(source.size)}, direction {tuple(round(d, 4) for d in source.direction)})"
        )
    return out


def read_geometry(path: str | Path) -> Geometry:
    """The geometry of a volume file (header only for NIfTI/MHA/NRRD; a DICOM folder is read in full).

    Raises:
        InputError: see :func:`read_image`.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir() or full_suffix(path) == ".npz":
        image = read_image(path)
    else:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError as exc:
            raise InputError(f"not a readable image header: {_first_line(exc)}", path) from exc
        dim = reader.GetDimension()
        direction = np.array(reader.GetDirection()).reshape(dim, dim)[:3, :3].ravel()
        return Geometry(
            tuple(int(v) for v in reader.GetSize()[:3]),
            tuple(float(v) for v in reader.GetSpacing()[:3]),
            tuple(float(v) for v in reader.GetOrigin()[:3]),
            tuple(float(v) for v in direction),
        )
    return Geometry.from_image(image)


def read_volume(
    path: str | Path,
    dtype: np.dtype | type | None = None,
    component: int | None = None,
    orient: str | None = None,
) -> Volume:
    """Read a volume (NIfTI, MHA/NRRD, DICOM folder, NPZ) into a :class:`Volume`.

    Args:
        path: file or DICOM folder.
        dtype: cast the array to this dtype (default: keep the file's).
        component: for 4-D files (MSD multi-modal ``(x, y, z, c)``) or vector voxels, the channel to read.
        orient: reorient to this DICOM orientation code before returning (e.g. ``"LPS"``: rows run
            anterior -> posterior, columns patient right -> left, slices inferior -> superior, the radiological
            display of an axial slice); the geometry is updated so that physical positions are unchanged.

    Returns:
        Volume with ``array`` (Z, Y, X) and its geometry.

    Raises:
        InputError: see :func:`read_image`; a 4-D or vector file without a valid ``component``; NaN/inf voxels.

    A NIfTI file whose qform and sform disagree is logged as a warning naming the file and the transform
    SimpleITK used (:func:`warn_qform_sform`).
    """
    path = Path(path)
    image = read_image(path)
    n_comp = image.GetSize()[3] if image.GetDimension() == 4 else image.GetNumberOfComponentsPerPixel()
    if image.GetDimension() == 4 or image.GetNumberOfComponentsPerPixel() > 1:
        if component is None or not 0 <= component < n_comp:
            raise InputError(
                f"holds {n_comp} channels; expected a scalar volume or a channel index in "
                f"[0, {n_comp - 1}] (got {component})",
                path,
            )
        if image.GetDimension() == 4:
            size = list(image.GetSize())
            image = sitk.Extract(image, size[:3] + [0], [0, 0, 0, component])
        else:
            image = sitk.VectorIndexSelectionCast(image, component)
    elif component not in (None, 0):
        raise InputError(f"channel {component} requested but the file holds one channel", path)
    if full_suffix(path) in (".nii", ".nii.gz"):
        warn_qform_sform(path, image)
    source_geometry = Geometry.from_image(image)
    if orient:
        image = sitk.DICOMOrient(image, orient)
    array = sitk.GetArrayFromImage(image)
    check_finite(array, path)
    if (
        np.issubdtype(array.dtype, np.floating)
        and full_suffix(path) in (".nii", ".nii.gz")
        and not array.all()
    ):  # ITK turned NaN/inf into 0, so only arrays holding a 0 can hide them
        bad = nifti_nonfinite_count(path)
        if bad:
            raise InputError(f"{bad} NaN/inf voxel(s) stored in the file; expected finite intensities", path)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    return Volume(
        array=array, geometry=Geometry.from_image(image), path=path, source_geometry=source_geometry
    )


def to_grey(array: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    """(H, W, C) colour -> (H, W) grey. Equal channels give channel 0 unchanged (no rescaling).

    Unequal RGB channels are combined with ITU-R BT.601 luma weights (float32); an alpha channel is dropped.

    Raises:
        InputError: an array that is neither (H, W) nor (H, W, 1..4).
    """
    if array.ndim == 2:
        return array
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise InputError(f"expected a grey or RGB(A) 2-D image, got array shape {array.shape}", path)
    channels = array.shape[-1]
    colour = array[..., : 3 if channels >= 3 else 1]
    if all(np.array_equal(colour[..., 0], colour[..., c]) for c in range(1, colour.shape[-1])):
        return np.ascontiguousarray(colour[..., 0])
    logger.debug("%s: colour channels differ; converting with BT.601 luma weights", path)
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return (colour.astype(np.float32) * weights).sum(-1)


def read_slice(path: str | Path) -> np.ndarray:
    """Read a 2-D image (PNG/JPEG/... 8- or 16-bit, or a single-slice volume) as an (H, W) array.

    Values and dtype are kept (uint8 stays uint8 0..255, uint16 stays uint16); equal-channel RGB -> grey.

    Raises:
        InputError: missing file, not an image, more than one slice, NaN/inf values.
    """
    path = Path(path)
    image = read_image(path)
    array = sitk.GetArrayFromImage(image)
    if image.GetNumberOfComponentsPerPixel() > 1:
        array = to_grey(array, path)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise InputError(f"expected a 2-D image, got array shape {array.shape}", path)
    check_finite(array, path)
    return array


def _write_sitk(image: sitk.Image, path: Path, compress: bool = True) -> Path:
    suffix = full_suffix(path)
    with atomic_path(path) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), compress and suffix not in (".png", ".jpg", ".jpeg"))
        except RuntimeError as exc:  # ITK names neither errno nor cause; a full disk or an unwritable folder
            raise OutputError(path, f"SimpleITK could not write it ({_first_line(exc)})") from exc
    return path


def write_volume(
    path: str | Path,
    array: np.ndarray,
    like: Volume | Geometry | sitk.Image | None = None,
    spacing: Sequence[float] | None = None,
    origin: Sequence[float] | None = None,
    direction: Sequence[float] | None = None,
) -> Path:
    """Write a (Z, Y, X) array as a volume, atomically; the format follows the suffix.

    A mask written ``like=`` a reference volume gets that volume's spacing, origin and direction, so it
    overlays the image in any viewer.

    Args:
        path: ``.nii``, ``.nii.gz``, ``.mha``, ``.nrrd`` or ``.npz``.
        array: (Z, Y, X) (or (H, W)) array; bool is written as uint8.
        like: reference whose geometry is copied (its size must match ``array``).
        spacing, origin, direction: explicit geometry (x, y, z order), overriding ``like``.

    Raises:
        InputError: ``array`` does not have the reference's shape; unsupported suffix.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    geometry = None
    if isinstance(like, Volume):
        geometry = like.geometry
    elif isinstance(like, sitk.Image):
        geometry = Geometry.from_image(like)
    elif isinstance(like, Geometry):
        geometry = like
    if geometry is not None and tuple(reversed(array.shape)) != tuple(geometry.size):
        raise InputError(
            f"array shape {array.shape} (z, y, x) does not match the reference volume size "
            f"{tuple(geometry.size)} (x, y, z)",
            path,
        )
    if full_suffix(path) == ".npz":
        meta = {}
        g_sp = spacing or (geometry.spacing if geometry else None)
        g_or = origin or (geometry.origin if geometry else None)
        g_dir = direction or (geometry.direction if geometry else None)
        for key, val in (("spacing", g_sp), ("origin", g_or), ("direction", g_dir)):
            if val is not None:
                meta[key] = np.asarray(val, dtype=np.float64)
        with atomic_path(path) as tmp:
            with tmp.open("wb") as fh:
                np.savez_compressed(fh, image=array, **meta)
        return path
    if full_suffix(path) not in VOLUME_SUFFIXES + SLICE_SUFFIXES:
        raise InputError(f"unsupported output suffix; expected one of {', '.join(VOLUME_SUFFIXES)}", path)
    image = sitk.GetImageFromArray(array)
    if geometry is not None:
        geometry.apply_to(image)
    if spacing is not None:
        image.SetSpacing(tuple(float(s) for s in spacing))
    if origin is not None:
        image.SetOrigin(tuple(float(o) for o in origin))
    if direction is not None:
        image.SetDirection(tuple(float(d) for d in direction))
    return _write_sitk(image, path)


def write_slice(path: str | Path, array: np.ndarray) -> Path:
    """Write an (H, W) uint8 or uint16 array as PNG (or another 2-D format by suffix), atomically.

    Values are written unchanged; pass a mask as 0/255 uint8 for viewers.

    Raises:
        InputError: not 2-D, or a dtype other than uint8/uint16 (or bool) for PNG/JPEG.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.ndim != 2:
        raise InputError(f"expected an (H, W) array, got shape {array.shape}", path)
    if full_suffix(path) in (".png", ".jpg", ".jpeg") and array.dtype not in (np.uint8, np.uint16):
        raise InputError(f"PNG/JPEG need uint8 or uint16 values, got {array.dtype}", path)
    return _write_sitk(sitk.GetImageFromArray(array), path, compress=False)
