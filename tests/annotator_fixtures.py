"""Fixtures of the annotator tests (tests/annotator, tests/gui): small synthetic images with labels.

A PNG slice folder, a NIfTI CT volume, a DICOM series and a tiny checkpoint; loaded for every test by
``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

PNG_SHAPE = (64, 80)  # non-square on purpose
VOLUME_SHAPE = (5, 48, 56)  # (z, y, x)
VOLUME_SPACING = (0.8, 0.7, 2.5)  # (x, y, z) mm
VOLUME_ORIGIN = (-20.0, 15.5, 100.0)
VOLUME_DIRECTION = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def _ellipse(shape: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (((yy - centre[0]) / radii[0]) ** 2 + ((xx - centre[1]) / radii[1]) ** 2) <= 1.0


@pytest.fixture
def png_case(tmp_path: Path) -> Path:
    """``tmp/data_source/case.png`` (64 x 80 uint8) with ``tmp/label/case.png`` (0/255); returns the image."""
    rng = np.random.default_rng(0)
    gt = _ellipse(PNG_SHAPE, (30, 42), (14, 20))
    image = np.where(gt, 180, 60).astype(np.float32) + rng.normal(0, 4, PNG_SHAPE)
    (tmp_path / "data_source").mkdir()
    (tmp_path / "label").mkdir()
    path = tmp_path / "data_source" / "case.png"
    sitk.WriteImage(sitk.GetImageFromArray(np.clip(image, 0, 255).astype(np.uint8)), str(path))
    sitk.WriteImage(sitk.GetImageFromArray(gt.astype(np.uint8) * 255), str(tmp_path / "label" / "case.png"))
    sitk.WriteImage(
        sitk.GetImageFromArray(np.full(PNG_SHAPE, 90, np.uint8)), str(tmp_path / "data_source" / "z2.png")
    )
    return path


@pytest.fixture
def nifti_case(tmp_path: Path) -> Path:
    """``tmp/images/vol.nii.gz`` (int16 HU, anisotropic, flipped direction) with ``tmp/images/label/vol.nii.gz``.

    The liver-like ellipse (60 HU in -100 HU tissue, air outside) is largest on slice 2.
    """
    rng = np.random.default_rng(1)
    d, h, w = VOLUME_SHAPE
    vol = np.full(VOLUME_SHAPE, -1000.0, np.float32)
    gt = np.zeros(VOLUME_SHAPE, np.uint8)
    body = _ellipse((h, w), (24, 28), (22, 26))
    for z, scale in enumerate((0.5, 0.8, 1.0, 0.8, 0.0)):
        vol[z][body] = -100.0
        if scale > 0:
            organ = _ellipse((h, w), (22, 30), (12 * scale, 15 * scale))
            vol[z][organ] = 60.0
            gt[z][organ] = 1
    vol += rng.normal(0, 5, VOLUME_SHAPE)
    folder = tmp_path / "images"
    (folder / "label").mkdir(parents=True)
    for arr, path in ((vol.astype(np.int16), folder / "vol.nii.gz"), (gt, folder / "label" / "vol.nii.gz")):
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing(VOLUME_SPACING)
        img.SetOrigin(VOLUME_ORIGIN)
        img.SetDirection(VOLUME_DIRECTION)
        sitk.WriteImage(img, str(path))
    return folder / "vol.nii.gz"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised tiny FPSNet saved with the project's checkpoint writer (CAM path only)."""
    import torch

    from wiml.networks.checkpoint import save_checkpoint
    from wiml.networks.fpsnet import FPSNet, FPSNetConfig

    torch.manual_seed(0)
    model = FPSNet(FPSNetConfig(base_width=4, depth=2))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.safetensors", model, {"kind": "weak"})


def _interior_point(mask: np.ndarray) -> tuple[int, int]:
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(np.pad(mask > 0, 1))[1:-1, 1:-1]
    r, c = np.unravel_index(int(dist.argmax()), dist.shape)
    return int(r), int(c)


@pytest.fixture
def interior_point():
    """``interior_point(mask) -> (row, col)``: the pixel of ``mask`` farthest from its border."""
    return _interior_point


@pytest.fixture
def dicom_case(tmp_path: Path) -> Path:
    """``tmp/patient/PATIENT_DICOM/image_0..2``: a 3-slice CT series (int16 HU, 0.7 x 0.7 x 2 mm)."""
    vol = np.full((3, 40, 48), -1000, np.int16)
    vol[:, 4:36, 4:44] = -100
    vol[:, 10:30, 12:36] = 60
    img = sitk.GetImageFromArray(vol)
    img.SetSpacing((0.7, 0.7, 2.0))
    img.SetOrigin((-10.0, 5.0, 30.0))
    folder = tmp_path / "patient" / "PATIENT_DICOM"
    folder.mkdir(parents=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetImageIO("GDCMImageIO")
    study, series = "1.2.826.0.1.3680043.2.1125.1", "1.2.826.0.1.3680043.2.1125.1.1"
    for z in range(vol.shape[0]):
        s = img[:, :, z]
        position = "\\".join(str(v) for v in img.TransformIndexToPhysicalPoint((0, 0, z)))
        for key, value in (
            ("0008|0060", "CT"),
            ("0020|000d", study),
            ("0020|000e", series),
            ("0020|0013", str(z + 1)),
            ("0020|0037", "1\\0\\0\\0\\1\\0"),
            ("0020|0032", position),
            ("0018|0050", "2.0"),
            ("0028|1053", "1"),
            ("0028|1052", "0"),
            ("0008|0018", f"{series}.{z + 1}"),
        ):
            s.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"image_{z}"))
        writer.Execute(s)
    return folder
