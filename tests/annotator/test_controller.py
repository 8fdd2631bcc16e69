"""The annotator's Qt-free layer: loading, ground truth lookup, clicks, undo, saving, versions, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from annotator_fixtures import PNG_SHAPE, VOLUME_DIRECTION, VOLUME_ORIGIN, VOLUME_SHAPE, VOLUME_SPACING

from wiml.annotator.controller import NO_CHECKPOINT_MESSAGE, AnnotationController
from wiml.annotator.loading import find_ground_truth, list_images, open_image, orientation_code
from wiml.data.wia_result import default_result_dir
from wiml.errors import CheckpointError, InputError


class FakeClock:
    """Deterministic time: each reading advances 0.5 s."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        self.t += 0.5
        return self.t


def read_png(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_open_png_finds_label_in_sibling_folder(png_case):
    image = open_image(png_case)
    assert image.shape == PNG_SHAPE and image.depth == 1 and not image.is_volume
    assert image.ground_truth_path == png_case.parent.parent / "label" / "case.png"
    assert set(np.unique(image.ground_truth)) == {0, 1}
    assert image.normalization == "unit" and image.value_max == 255.0
    assert find_ground_truth(png_case.parent / "z2.png") is None
    assert [p.name for p in list_images(png_case.parent)] == ["case.png", "z2.png"]
    assert default_result_dir(png_case) == png_case.parent.parent / "result"


def test_open_refuses_missing_and_non_images(tmp_path):
    with pytest.raises(InputError, match="not found|no such"):
        open_image(tmp_path / "nope.png")
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(InputError, match="unsupported file type"):
        open_image(bad)


def test_png_segment_click_undo_save_and_keep_previous_version(png_case, tmp_path, interior_point):
    ctl = AnnotationController(clock=FakeClock())
    snap = ctl.open(png_case)
    assert snap.ground_truth is not None and snap.raw.shape == PNG_SHAPE
    assert ctl.resolved_result_dir() == tmp_path / "result"
    snap = ctl.segment()
    assert snap.mask.sum() == 0 and snap.cam is None  # no checkpoint: empty initial mask
    before = snap.dice
    snap = ctl.add_click(*interior_point(snap.ground_truth), foreground=True)
    assert snap.dice > before + 0.1, "a click inside the missed object must raise Dice"
    after_one = snap.mask.copy()
    snap = ctl.add_click(2, 2, foreground=False)
    assert len(snap.clicks) == 2 and snap.clicks[1].label == 0
    snap = ctl.undo()
    assert len(snap.clicks) == 1 and np.array_equal(snap.mask, after_one)
    with pytest.raises(InputError, match="outside"):
        ctl.add_click(PNG_SHAPE[0], 0, foreground=True)

    saved = ctl.save().saved
    root = tmp_path / "result"
    assert root / "strong_label" / "case.png" in saved and not (root / "CAM").exists()
    label = read_png(root / "strong_label" / "case.png")
    assert label.shape == PNG_SHAPE and label.dtype == np.uint8 and set(np.unique(label)) == {0, 255}
    assert np.array_equal(label > 0, after_one > 0)
    assert read_png(root / "initial_mask" / "case.png").max() == 0
    rec = json.loads((root / "recording" / "case.json").read_text())
    assert rec["clicks"][0]["label"] == 1 and rec["clicks"][0]["t_s"] > 0
    assert len(rec["dice_per_step"]) == 2 and rec["initial_dice"] == 0.0
    assert rec["final_dice"] == pytest.approx(snap.dice) and rec["final_iou"] == pytest.approx(snap.iou)
    assert rec["total_time_s"] > rec["clicks"][0]["t_s"]

    # reopen, annotate differently, save again: the first version is kept beside the new one
    ctl2 = AnnotationController(clock=FakeClock())
    ctl2.open(png_case)
    ctl2.add_click(*interior_point(ctl2.ground_truth), foreground=True)  # segments implicitly first
    ctl2.add_click(30, 30, foreground=True)
    ctl2.save()
    assert np.array_equal(read_png(root / "strong_label" / "case.v1.png"), label)
    assert json.loads((root / "recording" / "case.v1.json").read_text()) == rec
    assert len(json.loads((root / "recording" / "case.json").read_text())["clicks"]) == 2


def test_save_before_segment_is_refused(png_case, tmp_path):
    ctl = AnnotationController(result_dir=tmp_path / "out")
    with pytest.raises(InputError, match="no image"):
        ctl.segment()
    ctl.open(png_case)
    with pytest.raises(InputError, match="nothing to save"):
        ctl.save()


def test_nifti_volume_saves_nifti_with_source_geometry(nifti_case, tmp_path, interior_point):
    ctl = AnnotationController(result_dir=tmp_path / "out", propagate=False)
    snap = ctl.open(nifti_case)
    assert snap.depth == VOLUME_SHAPE[0] and snap.slice_index == 2  # the slice with the most ground truth
    assert snap.is_ct and np.allclose(ctl.image.spacing_mm, (VOLUME_SPACING[1], VOLUME_SPACING[0]))
    net = ctl.network_image
    assert net.min() >= 0.0 and net.max() <= 1.0  # HU window of wiml prepare
    ctl.add_click(*interior_point(snap.ground_truth), foreground=True)
    slice2 = ctl.mask.copy()
    assert ctl.metrics()[0] > 0.1
    ctl.set_slice(1)
    assert ctl.mask is None and ctl.clicks == []  # each slice has its own annotation
    ctl.add_click(*interior_point(ctl.ground_truth), foreground=True)
    ctl.set_slice(2)
    assert len(ctl.clicks) == 1 and np.array_equal(ctl.mask, slice2)  # back: clicks and mask restored
    ctl.set_slice(1)
    saved = ctl.save().saved
    out = tmp_path / "out"
    assert out / "strong_label" / "vol.nii.gz" in saved
    for index in (1, 2):  # both changed slices get their recording
        rec = json.loads((out / "recording" / f"vol_{index:04d}.json").read_text())
        assert rec["slice_index"] == index and len(rec["clicks"]) == 1 and rec["patient_id"] == "vol"
        assert (out / "initial_mask" / f"vol_{index:04d}.png").is_file()
    assert not ctl.dirty
    label = sitk.ReadImage(str(out / "strong_label" / "vol.nii.gz"))
    assert label.GetSize() == (VOLUME_SHAPE[2], VOLUME_SHAPE[1], VOLUME_SHAPE[0])
    assert np.allclose(label.GetSpacing(), VOLUME_SPACING) and np.allclose(label.GetOrigin(), VOLUME_ORIGIN)
    assert np.allclose(label.GetDirection(), VOLUME_DIRECTION)
    arr = sitk.GetArrayFromImage(label)
    # the file's rows run the other way (direction diag(1, -1, 1)): the annotator shows the volume as wiml prepare
    # slices it (LPS) and writes the label back in the file's orientation
    assert np.array_equal(arr[2], slice2[::-1])  # both annotated slices are in the volume
    source = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti_case)))
    assert np.array_equal(ctl.image.volume[2], source[2][::-1].astype(np.float32))
    assert (
        orientation_code(ctl.image.reference) == "LPS"
        and orientation_code(ctl.image.source_geometry) == "LAS"
    )
    assert arr[1].sum() > 0 and arr[0].sum() == 0 and arr[4].sum() == 0
    with pytest.raises(InputError, match="out of range"):
        ctl.set_slice(VOLUME_SHAPE[0])


def test_missing_checkpoint_message_and_clicks_still_work(png_case, tmp_path, interior_point):
    ctl = AnnotationController(result_dir=tmp_path / "out")
    assert ctl.checkpoint_status == NO_CHECKPOINT_MESSAGE
    with pytest.raises(CheckpointError, match="not found"):
        ctl.load_checkpoint(tmp_path / "runs" / "best.safetensors")
    assert "not found" in ctl.checkpoint_status and "clicks only" in ctl.checkpoint_status
    ctl.open(png_case)
    snap = ctl.add_click(*interior_point(ctl.ground_truth), foreground=True)
    assert snap.mask.sum() > 0 and snap.cam is None


def test_corrupt_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "best.safetensors"
    bad.write_bytes(b"not a checkpoint")
    ctl = AnnotationController()
    with pytest.raises(CheckpointError):
        ctl.load_checkpoint(bad)
    assert ctl.model is None and ctl.checkpoint_error


def test_checkpoint_gives_cam_and_saves_it(png_case, tmp_path, tiny_checkpoint):
    ctl = AnnotationController(result_dir=tmp_path / "out", cam_input_px=32)
    assert "loaded" in ctl.load_checkpoint(tiny_checkpoint)
    ctl.open(png_case)
    snap = ctl.segment()
    assert snap.cam is not None and snap.cam.shape == PNG_SHAPE and snap.cam.dtype == np.float32
    assert 0.0 <= snap.cam.min() and snap.cam.max() <= 1.0
    assert snap.initial is not None and snap.initial.shape == PNG_SHAPE
    ctl.save()
    cam_png = read_png(tmp_path / "out" / "CAM" / "case.png")
    assert cam_png.shape == PNG_SHAPE and cam_png.dtype == np.uint8
    rec = json.loads((tmp_path / "out" / "recording" / "case.json").read_text())
    assert rec["checkpoint"] == str(tiny_checkpoint)


def test_dicom_series_saves_nifti_with_series_geometry(dicom_case, interior_point):
    ctl = AnnotationController()
    snap = ctl.open(dicom_case)
    assert snap.depth == 3 and snap.is_ct and snap.ground_truth is None and snap.name == "PATIENT_DICOM_0001"
    assert ctl.resolved_result_dir() == dicom_case.parent / "result"
    ctl.add_click(20, 24, foreground=True)
    ctl.save()
    label = sitk.ReadImage(str(dicom_case.parent / "result" / "strong_label" / "PATIENT_DICOM.nii.gz"))
    assert label.GetSize() == (48, 40, 3)
    assert np.allclose(label.GetSpacing(), (0.7, 0.7, 2.0)) and np.allclose(
        label.GetOrigin(), (-10.0, 5.0, 30.0)
    )
    arr = sitk.GetArrayFromImage(label)
    assert arr[1, 20, 24] == 1 and arr[0].sum() == 0 and arr[2].sum() == 0


def test_unwritable_result_folder_is_reported(png_case, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the result folder should go")
    ctl = AnnotationController(result_dir=blocker)
    ctl.open(png_case)
    ctl.add_click(30, 42, foreground=True)
    with pytest.raises(InputError, match="cannot write results"):
        ctl.save()
    assert ctl.dirty  # nothing was marked as saved


def test_prepared_slice_labels_feed_train_msl(png_case, tmp_path, interior_point, tiny_checkpoint):
    """A prepared slice opened in the annotator gives a strong label that wiml train-msl's WIA reader accepts."""
    from wiml.data.slices import SliceRecord, save_slice
    from wiml.training.strong_labels import wia_strong_labels

    image = open_image(png_case)
    npz = save_slice(
        tmp_path / "data" / "slices" / "p1" / "p1_0003.npz", image.volume / 255.0, image.ground_truth[0]
    )
    ctl = AnnotationController(cam_input_px=32)
    ctl.load_checkpoint(tiny_checkpoint)
    snap = ctl.open(npz)
    assert (
        snap.name == "p1_0003"
        and snap.ground_truth is not None
        and ctl.network_image.shape == (1, *PNG_SHAPE)
    )
    assert ctl.resolved_result_dir() == tmp_path / "data" / "result"
    snap = ctl.segment()
    assert snap.cam.shape == PNG_SHAPE
    ctl.add_click(*interior_point(snap.ground_truth), foreground=True)
    ctl.save()
    record = SliceRecord("p1", 3, npz, 1, True, "train", None, str(png_case))
    masks, recordings = wia_strong_labels([record], tmp_path / "data" / "result")
    assert np.array_equal(masks[0], ctl.mask)
    assert recordings[0]["patient_id"] == "p1" and recordings[0]["slice_index"] == 3


@pytest.mark.slow  # starts a helper process (spawn: a fresh interpreter)
def test_refinement_in_a_helper_process_matches_in_process(png_case, interior_point):
    """The helper-process session gives the same masks and errors as the in-process one."""
    local = AnnotationController()
    remote = AnnotationController(refine_in_process=True)
    try:
        for ctl in (local, remote):
            ctl.open(png_case)
            ctl.segment()
        r, c = interior_point(local.ground_truth)
        for ctl in (local, remote):
            ctl.add_click(r, c, foreground=True)
            ctl.add_click(2, 2, foreground=False)
        assert np.array_equal(local.mask, remote.mask) and remote.mask.sum() > 0
        for ctl in (local, remote):
            ctl.undo()
        assert np.array_equal(local.mask, remote.mask) and len(remote.clicks) == 1
        with pytest.raises(InputError, match="outside"):
            remote.current.session.add_click(PNG_SHAPE[0] + 1, 0, True)
        remote.open(png_case)  # the old sessions are dropped in the helper on the next call
        remote.add_click(r, c, foreground=True)
        assert remote.mask.sum() > 0
    finally:
        remote.close()
    assert remote._server is None


@pytest.mark.slow  # starts a helper process (spawn: a fresh interpreter)
def test_helper_process_restarts_after_a_crash(png_case, interior_point):
    from wiml.annotator.remote import RefinementServerError

    ctl = AnnotationController(refine_in_process=True)
    try:
        ctl.open(png_case)
        ctl.segment()
        ctl._server._process.terminate()  # simulate a crash of the helper we started
        ctl._server._process.join(5)
        with pytest.raises(RefinementServerError, match="restarted"):
            ctl.add_click(*interior_point(ctl.ground_truth), foreground=True)
        ctl.segment()  # a fresh session in the restarted helper
        snap = ctl.add_click(*interior_point(ctl.ground_truth), foreground=True)
        assert snap.mask.sum() > 0 and len(snap.clicks) == 1
    finally:
        ctl.close()


def test_cam_input_size_comes_from_the_checkpoint(tmp_path):
    from wiml.networks.checkpoint import save_checkpoint
    from wiml.networks.fpsnet import FPSNet, FPSNetConfig

    model = FPSNet(FPSNetConfig(base_width=4, depth=2))
    with_size = save_checkpoint(
        tmp_path / "a.safetensors", model, {"kind": "weak", "run_config": {"image_size": 48}}
    )
    without = save_checkpoint(tmp_path / "b.safetensors", model, {"kind": "weak"})
    ctl = AnnotationController()
    ctl.load_checkpoint(with_size)
    assert ctl.cam_input_px == 48
    ctl.load_checkpoint(without)
    assert ctl.cam_input_px == 256
    fixed = AnnotationController(cam_input_px=32)
    fixed.load_checkpoint(with_size)
    assert fixed.cam_input_px == 32
