"""wiml.data.io: geometry round-trips, 2-D slices (16-bit, equal-channel RGB), bad files."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from wiml.data.io import read_slice, read_volume, to_grey, write_slice, write_volume
from wiml.errors import InputError

SPACING = (0.75, 0.8, 2.5)
ORIGIN = (-10.0, 20.5, 3.0)
DIRECTION = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".mha", ".nrrd", ".npz"])
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_volume_round_trip_keeps_values_and_geometry(tmp_path, suffix, dtype):
    array = (np.random.default_rng(0).normal(size=(5, 6, 7)) * 100).astype(dtype)
    path = write_volume(tmp_path / f"v{suffix}", array, spacing=SPACING, origin=ORIGIN, direction=DIRECTION)
    vol = read_volume(path)
    assert vol.array.dtype == dtype and vol.array.shape == (5, 6, 7)
    np.testing.assert_array_equal(vol.array, array)
    assert vol.geometry.size == (7, 6, 5)
    np.testing.assert_allclose(vol.geometry.spacing, SPACING, rtol=1e-6)
    np.testing.assert_allclose(vol.geometry.origin, ORIGIN, rtol=1e-6)
    np.testing.assert_allclose(vol.geometry.direction, DIRECTION, atol=1e-6)
    np.testing.assert_allclose(vol.spacing_zyx, SPACING[::-1], rtol=1e-6)


def test_mask_written_like_a_volume_gets_its_geometry(tmp_path):
    ref = write_volume(
        tmp_path / "img.nii.gz",
        np.zeros((4, 8, 9), np.int16),
        spacing=SPACING,
        origin=ORIGIN,
        direction=DIRECTION,
    )
    vol = read_volume(ref)
    mask = np.zeros((4, 8, 9), bool)
    mask[1, 2:4, 3:5] = True
    out = read_volume(write_volume(tmp_path / "mask.mha", mask, like=vol))
    assert out.array.dtype == np.uint8 and out.array.sum() == 4
    assert out.geometry.size == vol.geometry.size
    np.testing.assert_allclose(out.geometry.spacing, vol.geometry.spacing, rtol=1e-6)
    np.testing.assert_allclose(out.geometry.origin, vol.geometry.origin)
    np.testing.assert_allclose(out.geometry.direction, vol.geometry.direction)
    with pytest.raises(InputError, match="does not match the reference"):
        write_volume(tmp_path / "bad.nii", mask[:2], like=vol)
    assert not (tmp_path / "bad.nii").exists()


def test_png_16bit_round_trip_is_exact(tmp_path):
    array = (np.arange(40 * 30).reshape(40, 30) * 53).astype(np.uint16)
    assert array.max() > 255
    out = read_slice(write_slice(tmp_path / "s.png", array))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, array)


def _write_rgb(path, grey: np.ndarray) -> None:
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(path))


def test_equal_channel_rgb_png_reads_as_grey_unchanged(tmp_path):
    grey = np.random.default_rng(1).integers(0, 256, size=(20, 24), dtype=np.uint8)
    _write_rgb(tmp_path / "rgb.png", grey)
    out = read_slice(tmp_path / "rgb.png")
    assert out.shape == (20, 24) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, grey)


def test_equal_channel_rgb_jpeg_reads_as_grey_without_rescaling(tmp_path):
    yy, xx = np.mgrid[0:64, 0:64]
    grey = (30 + 2 * xx + yy).astype(np.uint8)  # smooth: JPEG keeps it within a few grey values
    _write_rgb(tmp_path / "rgb.jpg", grey)
    out = read_slice(tmp_path / "rgb.jpg")
    assert out.shape == (64, 64) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - grey).max() <= 4
    assert abs(float(out.mean()) - float(grey.mean())) < 1.0


def test_to_grey_of_unequal_channels_uses_luma():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 100
    grey = to_grey(rgb)
    np.testing.assert_allclose(grey, 29.9, rtol=1e-5)


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="not found") as info:
        read_volume(tmp_path / "missing.nii")
    assert "missing.nii" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty folder"):
        read_volume(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match="not a readable image") as info:
        read_volume(tmp_path / "notes.txt")
    assert "notes.txt" in str(info.value)
    (tmp_path / "fake.nii.gz").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="fake.nii.gz"):
        read_volume(tmp_path / "fake.nii.gz")
    folder = tmp_path / "nodicom"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    with pytest.raises(InputError, match="no DICOM series"):
        read_volume(folder)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".npz"])
def test_nan_voxels_are_rejected(tmp_path, suffix):
    array = np.zeros((3, 4, 4), np.float32)
    array[1, 2, 2] = np.nan
    array[2, 0, 0] = np.inf
    path = write_volume(tmp_path / f"nan{suffix}", array)
    with pytest.raises(InputError, match="2 NaN/inf voxel") as info:
        read_volume(path)
    assert f"nan{suffix}" in str(info.value)


def test_dicom_series_round_trip(tmp_path):
    """A series written slice by slice with SimpleITK reads back in order with spacing and HU."""
    array = (np.arange(4)[:, None, None] * 100 - 1000 + np.zeros((4, 6, 5))).astype(np.int16)
    folder = tmp_path / "series"
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in [2, 0, 3, 1]:  # written out of order
        sl = sitk.GetImageFromArray(array[k])
        sl.SetSpacing((0.6, 0.6))
        for tag, value in [
            ("0008|0060", "CT"),
            ("0020|000d", "1.2.3"),
            ("0020|000e", "1.2.3.4"),
            ("0020|0032", f"0\\0\\{k * 1.5}"),
            ("0020|0037", "1\\0\\0\\0\\1\\0"),
            ("0020|0013", str(k)),
            ("0028|0030", "0.6\\0.6"),
        ]:
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice_{k}.dcm"))
        writer.Execute(sl)
    vol = read_volume(folder)
    np.testing.assert_array_equal(vol.array[:, 0, 0], [-1000, -900, -800, -700])
    np.testing.assert_allclose(vol.geometry.spacing, (0.6, 0.6, 1.5), rtol=1e-4)


def test_4d_component_and_reorientation(tmp_path):
    vols = [np.full((3, 4, 5), 10 * c, np.int16) for c in range(3)]
    image = sitk.JoinSeries([sitk.GetImageFromArray(v) for v in vols])
    sitk.WriteImage(image, str(tmp_path / "multi.nii.gz"))
    assert read_volume(tmp_path / "multi.nii.gz", component=2).array.shape == (3, 4, 5)
    assert (read_volume(tmp_path / "multi.nii.gz", component=2).array == 20).all()
    with pytest.raises(InputError, match="holds 3 channels"):
        read_volume(tmp_path / "multi.nii.gz")
    array = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    path = write_volume(tmp_path / "flipped.nii.gz", array, direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))
    vol = read_volume(path, orient="LPS")
    np.testing.assert_array_equal(vol.array, array[:, ::-1, ::-1])
    np.testing.assert_allclose(vol.geometry.direction, (1, 0, 0, 0, 1, 0, 0, 0, 1))
    # the first voxel of the reoriented array is the last one of the file, at the same physical point
    ref = sitk.ReadImage(str(path))
    np.testing.assert_allclose(vol.geometry.origin, ref.TransformIndexToPhysicalPoint((3, 2, 0)))
