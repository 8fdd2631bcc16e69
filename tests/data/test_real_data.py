"""The data layer on ../shared/data (skipped where it is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from wiml.data.datasets import detect_layout, find_cases, find_slice_folders
from wiml.data.io import read_slice, read_volume
from wiml.data.prepare import PrepareConfig, SplitConfig, prepare
from wiml.data.slices import load_slice, read_manifest

pytestmark = pytest.mark.realdata

LIVER_REGEX = r"^[a-z]+_(?P<patient>\d+)_\d+$"


@pytest.mark.slow
def test_brats2015_prepare_gives_155_slices_and_both_tags(shared_data, tmp_path):
    root = shared_data / "brats2015"
    assert detect_layout(root) == "brats2015"
    _, cases = find_cases(root, channels=["flair", "t1c"])
    assert len(cases) == 5
    cfg = PrepareConfig(input=root, channels=["flair", "t1c"], size=64, patients=[cases[0].patient_id])
    summary = prepare(cfg, tmp_path / "brats", progress=False)
    records = read_manifest(tmp_path / "brats")
    assert summary.n_slices == len(records) == 155
    assert [r.slice_index for r in records] == list(range(155))
    assert {r.tag for r in records} == {0, 1}
    assert records[0].spacing_mm == pytest.approx((240 / 64, 240 / 64, 1.0))
    image, mask = load_slice(records[80])
    assert image.shape == (2, 64, 64) and mask.shape == (64, 64)
    assert all(r.tag == int(load_slice(r)[1].any()) for r in records[::10])
    dropped = prepare(
        PrepareConfig(input=root, size=64, patients=[cases[0].patient_id], drop_empty_margin=0),
        tmp_path / "drop",
        progress=False,
    )
    assert dropped.n_slices == summary.n_positive


def test_liver_ct_slices_group_by_patient(shared_data):
    cases = find_slice_folders(shared_data / "liver_ct_slices", LIVER_REGEX)
    assert sum(len(c.items) for c in cases) == 484
    assert len(cases) == 92
    assert all(it.mask is not None for c in cases for it in c.items)
    assert all(c.patient_id.isdigit() and 10001 <= int(c.patient_id) <= 10123 for c in cases)
    grey = read_slice(cases[0].items[0].image)
    assert grey.shape == (256, 256) and grey.dtype == np.uint8


def test_ircadb_dicom_series(shared_data):
    root = shared_data / "ircadb_patient1"
    vol = read_volume(root / "PATIENT_DICOM")
    assert vol.array.shape == (129, 512, 512)
    assert vol.geometry.spacing[0] == pytest.approx(0.57, abs=1e-3)
    assert vol.geometry.spacing[1] == pytest.approx(0.57, abs=1e-3)
    assert vol.geometry.spacing[2] == pytest.approx(1.6, abs=1e-3)
    assert vol.array.min() <= -1000 and vol.array.max() >= 1000  # HU, air to bone
    assert -1050 < np.median(vol.array[:, :20, :20]) < -950  # air in the corner
    masks = read_volume(root / "MASKS_DICOM" / "liver").array
    tags = masks.reshape(129, -1).max(1) > 0
    assert int(tags.sum()) == 98 and int((~tags).sum()) == 31
    # slices in order: liver on image_27 .. image_124, a contiguous run
    assert np.flatnonzero(tags)[0] == 27 and np.flatnonzero(tags)[-1] == 124
    assert np.median(vol.array[tags][masks[tags] > 0]) == pytest.approx(100, abs=80)  # liver HU


@pytest.mark.slow
def test_ircadb_prepare_window_like_liver_slices(shared_data, tmp_path):
    cfg = PrepareConfig(
        input=shared_data / "ircadb_patient1",
        window_hu=[0.0, 255.0],
        size=128,
        split=SplitConfig(ratios=[0, 0, 1]),
    )
    summary = prepare(cfg, tmp_path / "ircadb", progress=False)
    records = read_manifest(tmp_path / "ircadb")
    assert summary.layout == "dicom" and len(records) == 129 and sum(r.tag for r in records) == 98
    assert {r.split for r in records} == {"test"}
    assert records[0].spacing_mm == pytest.approx((0.57 * 4, 0.57 * 4, 1.6), rel=1e-3)


def test_wiml_samples_both_layouts(shared_data):
    cases = find_slice_folders(shared_data / "wiml_samples")
    assert len(cases) == 10
    assert {c.patient_id.split("-")[0] for c in cases} == {"WIA", "test_data"}
