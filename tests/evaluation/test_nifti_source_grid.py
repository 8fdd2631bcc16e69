"""``wiml test`` writes NIfTI predictions on the source's own voxel grid: with "prediction = ground truth", the
written file must equal the source label voxel for voxel, with its size, spacing, origin and direction, for
flipped, oblique, permuted, non-square volumes and for files whose qform and sform disagree."""

from __future__ import annotations

import logging
import struct

import numpy as np
import pytest
import SimpleITK as sitk

from wiml.data.io import nifti_qform_sform, read_volume, warn_qform_sform
from wiml.data.prepare import PrepareConfig, SplitConfig, prepare
from wiml.evaluation.evaluate import TestConfig as EvalConfig
from wiml.evaluation.evaluate import evaluate, load_cases


def _rotation(z_deg: float, x_deg: float) -> np.ndarray:
    a, b = np.radians(z_deg), np.radians(x_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


DIRECTIONS = {
    "lps_identity": np.eye(3),
    "ras_flipped": np.diag([-1.0, -1.0, 1.0]),
    "all_flipped": np.diag([-1.0, -1.0, -1.0]),
    "oblique": _rotation(25.0, 10.0),
    "oblique_flipped": _rotation(-30.0, 15.0) @ np.diag([-1.0, -1.0, 1.0]),
    "sagittal_permuted": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
}
SHAPE_ZYX = (4, 6, 8)  # non-square; every side divides the prepared size 24, so resizing is exact both ways
SPACING_XYZ = (0.7, 0.9, 2.5)


def _label() -> np.ndarray:
    """An asymmetric 0/1/2 label (liver = label >= 1), so any flip or permutation shows."""
    seg = np.zeros(SHAPE_ZYX, np.uint8)
    seg[1:3, 1:4, 2:7] = 1
    seg[1, 1, 2] = 2
    seg[2, 3, 5:7] = 2
    seg[3, 5, 7] = 1
    return seg


def _write_case(root, direction: np.ndarray, origin=(12.0, -30.0, 7.5)):
    rng = np.random.default_rng(0)
    seg = _label()
    vol = (rng.normal(40, 5, SHAPE_ZYX) + 40 * seg).astype(np.int16)
    root.mkdir(parents=True, exist_ok=True)
    for name, arr in (("volume-0.nii", vol), ("segmentation-0.nii", seg)):
        image = sitk.GetImageFromArray(arr)
        image.SetSpacing(SPACING_XYZ)
        image.SetOrigin(origin)
        image.SetDirection(tuple(direction.ravel()))
        sitk.WriteImage(image, str(root / name))
    return root / "segmentation-0.nii"


def _shift_sform(path, dx_mm: float, sform_code: int) -> None:
    """Move the sform of a NIfTI-1 file by ``dx_mm`` along x (the qform stays): they now disagree."""
    data = bytearray(path.read_bytes())
    srow = list(struct.unpack("<12f", data[280:328]))
    srow[3] += dx_mm
    data[280:328] = struct.pack("<12f", *srow)
    data[254:256] = struct.pack("<h", sform_code)
    path.write_bytes(bytes(data))


def _predict_ground_truth(tmp_path, raw):
    cfg = PrepareConfig(input=raw, layout="lits", size=24, split=SplitConfig(ratios=[0.0, 0.0, 1.0]))
    data = tmp_path / "data"
    prepare(cfg, data, progress=False)
    cases, kind = load_cases(data, "test")
    out = tmp_path / "test"
    evaluate(
        None,
        cases,
        out,
        EvalConfig(overlays=0),
        "cpu",
        data=data,
        kind=kind,
        predictions=[c.mask for c in cases],
    )
    (written,) = sorted((out / "predictions").glob("*.nii.gz"))
    return written


def _assert_voxel_identical(pred_path, label_path):
    pred, label = sitk.ReadImage(str(pred_path)), sitk.ReadImage(str(label_path))
    assert pred.GetSize() == label.GetSize()
    np.testing.assert_allclose(pred.GetSpacing(), label.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(pred.GetOrigin(), label.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(pred.GetDirection(), label.GetDirection(), atol=1e-6)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(pred), (sitk.GetArrayFromImage(label) >= 1).astype(np.uint8)
    )


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_prediction_equal_to_ground_truth_round_trips_voxel_identically(tmp_path, name):
    label_path = _write_case(tmp_path / "raw", DIRECTIONS[name])
    _assert_voxel_identical(_predict_ground_truth(tmp_path, tmp_path / "raw"), label_path)


def test_round_trip_without_stored_source_geometry_reads_the_source_header(tmp_path):
    """Folders prepared before ``source_geometry`` existed: the header of the source label is used."""
    import json

    label_path = _write_case(tmp_path / "raw", DIRECTIONS["oblique_flipped"])
    cfg = PrepareConfig(
        input=tmp_path / "raw", layout="lits", size=24, split=SplitConfig(ratios=[0.0, 0.0, 1.0])
    )
    data = tmp_path / "data"
    prepare(cfg, data, progress=False)
    meta = json.loads((data / "patients.json").read_text())
    for info in meta.values():
        del info["source_geometry"]
    (data / "patients.json").write_text(json.dumps(meta))
    cases, kind = load_cases(data, "test")
    evaluate(None, cases, tmp_path / "t", EvalConfig(overlays=0), "cpu", data=data, kind=kind,
             predictions=[c.mask for c in cases])  # fmt: skip
    (written,) = (tmp_path / "t" / "predictions").glob("*.nii.gz")
    _assert_voxel_identical(written, label_path)


@pytest.mark.parametrize(("sform_code", "used"), [(1, "sform"), (2, "qform")])
def test_qform_sform_disagreement_warns_and_round_trips(tmp_path, caplog, sform_code, used):
    raw = tmp_path / "raw"
    label_path = _write_case(raw, DIRECTIONS["ras_flipped"])
    for path in (raw / "volume-0.nii", label_path):
        _shift_sform(path, 5.0, sform_code)
    qcode, qform, scode, sform = nifti_qform_sform(label_path)
    assert (qcode, scode) == (1, sform_code) and abs(sform[0, 3] - qform[0, 3]) == pytest.approx(5.0)
    with caplog.at_level(logging.WARNING, logger="wiml.data.io"):
        written = _predict_ground_truth(tmp_path, raw)
    warnings = [r.getMessage() for r in caplog.records if "qform and sform disagree" in r.getMessage()]
    assert any(str(label_path) in w and f"SimpleITK used the {used}" in w for w in warnings)
    # the prediction follows the transform SimpleITK chose, so it overlays the label as a scorer reads it
    _assert_voxel_identical(written, label_path)
    expected_x = -qform[0, 3] if used == "qform" else -sform[0, 3]  # RAS -> LPS
    assert sitk.ReadImage(str(written)).GetOrigin()[0] == pytest.approx(expected_x, abs=1e-4)


def test_consistent_nifti_gives_no_warning(tmp_path):
    label_path = _write_case(tmp_path / "raw", DIRECTIONS["oblique_flipped"])
    assert warn_qform_sform(label_path, sitk.ReadImage(str(label_path))) is None
    vol = read_volume(label_path, orient="LPS")
    assert vol.source_geometry.direction != vol.geometry.direction  # reoriented, the file's own kept
    np.testing.assert_allclose(
        vol.source_geometry.direction, DIRECTIONS["oblique_flipped"].ravel(), atol=1e-6
    )
