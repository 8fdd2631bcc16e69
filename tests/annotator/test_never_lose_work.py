"""Never lose work, continue work (Qt-free): every dirty slice saved, merging into a saved label, undo/redo of
every change, the event record, autosave + recovery, saved labels and tags loaded back, references found."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from annotator_fixtures import VOLUME_SHAPE

from wiml.annotator.annotation import SliceAnnotation
from wiml.annotator.controller import (
    FINISHED,
    PROPOSED,
    UNSAVED,
    UNTOUCHED,
    AnnotationController,
)
from wiml.annotator.loading import find_ground_truth
from wiml.annotator.recovery import RecoveryFile
from wiml.data.wia_result import Recording, read_recording, read_tags_csv, write_tags_csv
from wiml.errors import InputError


class StepClock:
    """Deterministic time: each reading advances ``step`` seconds (a test can add a long pause)."""

    def __init__(self, step: float = 0.5) -> None:
        self.t, self.step = 100.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def label_array(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_save_writes_every_dirty_slice_even_when_the_shown_one_is_empty(nifti_case, tmp_path, interior_point):
    ctl = AnnotationController(result_dir=tmp_path / "out", propagate=False)
    ctl.open(nifti_case)
    ctl.set_slice(1)
    ctl.add_click(*interior_point(ctl.ground_truth), foreground=True)
    clicked = ctl.mask.copy()
    ctl.set_slice(4)  # no mask here: saving used to give up ("nothing to save yet")
    assert ctl.mask is None and ctl.dirty and ctl.dirty_slices == [1]
    saved = ctl.save().saved
    out = tmp_path / "out"
    assert out / "strong_label" / "vol.nii.gz" in saved and not ctl.dirty
    arr = label_array(out / "strong_label" / "vol.nii.gz")[:, ::-1]  # the file is LAS, the display LPS
    assert np.array_equal(arr[1], clicked) and arr[[0, 2, 3, 4]].sum() == 0
    with pytest.raises(InputError, match="nothing to save"):
        ctl.save()


def test_saving_merges_with_the_label_saved_in_an_earlier_session(nifti_case, tmp_path, interior_point):
    out = tmp_path / "out"
    first = AnnotationController(result_dir=out, propagate=False)
    first.open(nifti_case)
    masks = {}
    for index in (1, 3):
        first.set_slice(index)
        first.add_click(*interior_point(first.ground_truth), foreground=True)
        masks[index] = first.mask.copy()
    first.save()

    second = AnnotationController(result_dir=out, propagate=False)
    snap = second.open(nifti_case)  # the saved work is loaded back and the slices are marked finished
    assert snap.slice_status[1] == snap.slice_status[3] == FINISHED and snap.slice_status[2] == UNTOUCHED
    second.set_slice(1)
    assert np.array_equal(second.mask, masks[1]) and second.current.proposal == "saved"
    second.set_slice(2)
    second.add_click(*interior_point(second.ground_truth), foreground=True)
    masks[2] = second.mask.copy()
    second.save()
    arr = label_array(out / "strong_label" / "vol.nii.gz")[:, ::-1]
    for index, mask in masks.items():  # all three slices, not only the one of the last session
        assert np.array_equal(arr[index], mask), index
    assert arr[[0, 4]].sum() == 0
    previous = label_array(out / "strong_label" / "vol.v1.nii.gz")[:, ::-1]  # the previous file is kept
    assert previous[1].any() and previous[3].any() and not previous[2].any()


def test_segment_clear_and_clicks_are_undoable_and_redoable(png_case, tmp_path, interior_point):
    ctl = AnnotationController(result_dir=tmp_path / "out", clock=StepClock())
    ctl.open(png_case)
    ctl.segment()
    r, c = interior_point(ctl.ground_truth)
    ctl.add_click(r, c, True)
    one = ctl.mask.copy()
    ctl.add_click(2, 2, False)
    two = ctl.mask.copy()
    snap = ctl.clear()
    assert snap.clicks == () and snap.mask.sum() == 0 and snap.can_undo
    snap = ctl.undo()  # Clear undone: both clicks and their mask are back
    assert len(snap.clicks) == 2 and np.array_equal(snap.mask, two)
    snap = ctl.undo()
    assert len(snap.clicks) == 1 and np.array_equal(snap.mask, one)
    snap = ctl.redo()
    assert len(snap.clicks) == 2 and np.array_equal(snap.mask, two)
    # the refinement session follows the history: the next click refines the mask shown
    snap = ctl.add_click(r + 3, c + 3, True)
    assert len(snap.clicks) == 3 and ctl.current.session.clicks[-1].row == r + 3
    assert not ctl.redo().can_redo  # a new change drops the redo steps
    ctl.segment()  # a new start drops the clicks ...
    snap = ctl.undo()  # ... and is undoable too
    assert len(snap.clicks) == 3
    record = ctl.recording()
    actions = [e["action"] for e in record.events]
    assert actions == [
        "segment",
        "click",
        "click",
        "clear",
        "undo",
        "undo",
        "redo",
        "click",
        "segment",
        "undo",
    ]
    assert record.events[4]["undone"] == "clear" and record.events[2]["label"] == 0
    times = [e["t_s"] for e in record.events]
    assert times == sorted(times) and times[0] > 0


def test_active_time_leaves_out_idle_gaps():
    annotation = SliceAnnotation(idle_gap_s=30.0)
    annotation.show(0.0)
    annotation.log("click", 5.0)
    annotation.log("click", 605.0)  # a 10-minute break counts 30 s
    annotation.log("click", 610.0)
    assert annotation.active(610.0) == pytest.approx(5.0 + 30.0 + 5.0)
    assert annotation.elapsed(610.0) == pytest.approx(610.0)
    annotation.hide(620.0)
    assert annotation.active(10_000.0) == pytest.approx(50.0)  # hidden: the clock stops


def test_recovery_file_restores_unsaved_work_after_a_kill(nifti_case, tmp_path, interior_point):
    out = tmp_path / "out"
    ctl = AnnotationController(result_dir=out, propagate=False)
    ctl.open(nifti_case)
    ctl.set_slice(1)
    point = interior_point(ctl.ground_truth)
    ctl.add_click(*point, foreground=True)
    ctl.set_tag(1)
    mask = ctl.mask.copy()
    recovery = RecoveryFile.for_image(out, "vol")
    assert recovery.path.is_file()  # autosaved after the change; the process is now "killed" (no save)

    again = AnnotationController(result_dir=out, propagate=False)
    snap = again.open(nifti_case)
    assert snap.recovery == recovery.path
    snap = again.restore_recovery()
    again.set_slice(1)
    assert np.array_equal(again.mask, mask) and [(c.row, c.col) for c in again.clicks] == [point]
    assert again.dirty and again.snapshot().tags[1] == 1
    again.add_click(point[0] + 2, point[1] + 2, True)  # a restored slice can be refined further
    assert again.mask[point] == 1
    again.save()
    assert not recovery.path.exists()  # Save removes the recovery file
    rec = read_recording(out / "recording" / "vol_0001.json")
    assert "restore" in [e["action"] for e in rec.events]
    # another image's recovery file is never offered
    other = AnnotationController(result_dir=out)
    assert other.open(nifti_case).recovery is None


def test_tags_one_slice_and_a_range_in_two_presses_are_saved_as_csv(nifti_case, tmp_path):
    ctl = AnnotationController(result_dir=tmp_path / "out", propagate=False)
    ctl.open(nifti_case)
    ctl.set_slice(1)
    ctl.mark_range()
    ctl.set_slice(3)
    snap = ctl.mark_range()
    assert snap.tags == (0, 1, 1, 1, 0)
    ctl.set_tag(0, index=3)
    ctl.save()
    assert read_tags_csv(tmp_path / "out" / "tags" / "vol.csv") == {0: 0, 1: 1, 2: 1, 3: 0, 4: 0}
    with pytest.raises(InputError, match="0 .absent. or 1"):
        ctl.set_tag(2)
    again = AnnotationController(result_dir=tmp_path / "out")
    assert again.open(nifti_case).tags == (0, 1, 1, 0, 0)  # loaded back


def test_tags_csv_round_trip_and_validation(tmp_path):
    path = write_tags_csv(tmp_path / "t.csv", {3: 1, 1: 0}, {3: "range"})
    assert path.read_text().splitlines() == ["slice_index,tag,source", "1,0,gui", "3,1,range"]
    assert read_tags_csv(path) == {1: 0, 3: 1}
    path.write_text("slice_index,tag\n1,5\n")
    with pytest.raises(InputError, match="tag must be 0 or 1"):
        read_tags_csv(path)


def test_moving_next_to_a_finished_slice_proposes_a_propagated_mask(nifti_case, tmp_path, interior_point):
    ctl = AnnotationController(result_dir=tmp_path / "out")
    ctl.open(nifti_case)  # slice 2: the largest ellipse
    gt = ctl.ground_truth
    ctl.add_click(*interior_point(gt), foreground=True)
    snap = ctl.set_slice(3)
    assert snap.proposal == "propagated" and "propagated" in snap.message
    assert snap.dice > 0.8, "the neighbour's mask is a good start on the next slice"
    assert snap.slice_status[3] == PROPOSED and not ctl.current.dirty  # a proposal is not yet work
    snap = ctl.undo()  # and it can be dropped
    assert snap.mask is None
    ctl.set_slice(4)  # no target and no finished neighbour: nothing proposed
    assert ctl.mask is None
    assert ctl.snapshot().slice_status[2] == UNSAVED


def test_recording_schema_is_versioned_and_reads_version_1(tmp_path):
    v1 = {"image": "a.png", "patient_id": "a", "slice_index": 0, "clicks": [], "source": "wia-sim robot user"}
    rec = Recording.from_dict(v1)
    assert rec.schema_version == 2 and rec.source == "robot"
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**v1, "schema_version": 99}))
    with pytest.raises(InputError, match="newer"):
        read_recording(path)
    path.write_text(json.dumps({"image": "a.png"}))
    with pytest.raises(InputError, match="lacks patient_id"):
        read_recording(path)


def test_references_found_for_the_layouts_wiml_prepares(tmp_path):
    def touch(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        return path

    dicom = tmp_path / "ircadb" / "PATIENT_DICOM"
    touch(dicom / "image_0")
    touch(tmp_path / "ircadb" / "MASKS_DICOM" / "bone" / "image_0")
    liver = touch(tmp_path / "ircadb" / "MASKS_DICOM" / "liver" / "image_0").parent
    assert find_ground_truth(dicom) == liver
    flair = touch(tmp_path / "b19" / "BraTS19_1" / "BraTS19_1_flair.nii.gz")
    seg = touch(tmp_path / "b19" / "BraTS19_1" / "BraTS19_1_seg.nii.gz")
    assert find_ground_truth(flair) == seg
    b15 = touch(tmp_path / "b15" / "case" / "Flair_subtrMeanDivStd.nii.gz")
    ot = touch(tmp_path / "b15" / "case" / "OTMultiClass.nii.gz")
    assert find_ground_truth(b15) == ot
    msd = touch(tmp_path / "Task03" / "imagesTr" / "liver_1.nii.gz")
    msd_label = touch(tmp_path / "Task03" / "labelsTr" / "liver_1.nii.gz")
    assert find_ground_truth(msd) == msd_label
    lits = touch(tmp_path / "lits" / "volume-7.nii")
    lits_label = touch(tmp_path / "lits" / "segmentation-7.nii")
    assert find_ground_truth(lits) == lits_label


def test_load_reference_checks_the_size(nifti_case, tmp_path):
    ctl = AnnotationController(result_dir=tmp_path / "out")
    ctl.open(nifti_case)
    gt_path = nifti_case.parent / "label" / "vol.nii.gz"
    ctl.image.ground_truth = None
    assert ctl.snapshot().dice is None
    ctl.load_reference(gt_path)
    assert ctl.ground_truth is not None and ctl.snapshot().reference_path == gt_path
    small = tmp_path / "small.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 4, 4), np.uint8)), str(small))
    with pytest.raises(InputError, match="size"):
        ctl.load_reference(small)
    assert VOLUME_SHAPE[0] == ctl.image.depth


def test_checkpoint_of_another_image_kind_and_empty_cam_are_warned(
    png_case, tmp_path, tiny_checkpoint, monkeypatch
):
    import shutil

    import wiml.annotator.controller as controller_module

    ckpt = tmp_path / "ckpt" / "best.safetensors"
    ckpt.parent.mkdir()
    shutil.copy(tiny_checkpoint, ckpt)
    sidecar = json.loads(tiny_checkpoint.with_suffix(".json").read_text())
    data = tmp_path / "brats_data"
    data.mkdir()
    (data / "prepare.json").write_text(
        json.dumps({"layout": "brats2015", "config": {"normalize": "auto", "channels": ["flair", "t1c"]}})
    )
    sidecar["run_config"] = {**(sidecar.get("run_config") or {}), "data_dir": str(data), "image_size": 32}
    ckpt.with_suffix(".json").write_text(json.dumps(sidecar))
    ctl = AnnotationController(result_dir=tmp_path / "out")
    ctl.load_checkpoint(ckpt)
    snap = ctl.open(png_case)
    assert "trained on MR (z-scored) images, this is 8-bit slice" in snap.warning
    ctl.load_checkpoint(tiny_checkpoint)  # no data_dir recorded: nothing to compare
    assert ctl.snapshot().warning is None
    monkeypatch.setattr(
        controller_module, "compute_cam", lambda *a, **k: np.zeros(ctl.image.shape, np.float32)
    )
    assert "CAM was empty on slice 0" in ctl.segment().warning
    cam = (ctl.ground_truth > 0).astype(np.float32)
    monkeypatch.setattr(controller_module, "compute_cam", lambda *a, **k: cam)
    assert ctl.segment().warning is None


def test_brush_and_eraser_are_undoable_events_and_clicks_refine_the_edited_mask(
    png_case, tmp_path, interior_point
):
    ctl = AnnotationController(result_dir=tmp_path / "out", clock=StepClock())
    ctl.open(png_case)
    snap = ctl.brush([(10, 10), (10, 20)], radius_px=2)  # before Segment: paints on an empty mask
    painted = snap.mask.copy()
    assert painted[10, 10:21].all() and painted[12, 15] == 1 and painted[13, 15] == 0 and painted.sum() < 120
    snap = ctl.brush([(10, 15)], radius_px=0, erase=True)
    assert snap.mask[10, 15] == 0 and snap.mask.sum() == painted.sum() - 1
    snap = ctl.undo()
    assert np.array_equal(snap.mask, painted)
    snap = ctl.redo()
    assert snap.mask[10, 15] == 0
    r, c = interior_point(ctl.ground_truth)
    snap = ctl.add_click(r, c, True)  # the click refines the edited mask: the far stroke stays
    assert snap.mask[r, c] == 1 and snap.mask[10, 12] == 1
    actions = [e["action"] for e in ctl.recording().events]
    assert actions[:4] == ["brush", "erase", "undo", "redo"] and "click" in actions
    brush_event = ctl.recording().events[0]
    assert brush_event["radius_px"] == 2 and brush_event["pixels"] == int(painted.sum())
    with pytest.raises(InputError, match="radius"):
        ctl.brush([(1, 1)], radius_px=-1)
    with pytest.raises(InputError, match="empty"):
        ctl.brush([], radius_px=1)


def test_window_presets_for_ct_and_from_percentiles():
    from wiml.annotator.overlay import CT_PRESETS, window_presets

    assert window_presets(None, True) == CT_PRESETS
    presets = window_presets({0.5: 0.0, 1.0: 10.0, 5.0: 20.0, 95.0: 80.0, 99.0: 90.0, 99.5: 100.0}, False)
    assert presets["Full range (0.5-99.5 %)"] == (50.0, 100.0) and presets["Narrow (5-95 %)"] == (50.0, 60.0)
    assert window_presets(None, False) == {}


def test_box_proposal_starts_from_a_box_around_the_target(png_case, tmp_path):
    ctl = AnnotationController(result_dir=tmp_path / "out")
    ctl.open(png_case)
    rows, cols = np.nonzero(ctl.ground_truth)
    box = (rows.min() - 2, cols.min() - 2, rows.max() + 2, cols.max() + 2)
    snap = ctl.propose_box(box)
    assert snap.proposal == "box" and snap.clicks == () and snap.dice > 0.85
    assert snap.mask[: box[0]].sum() == 0  # nothing above the box
    assert ctl.undo().mask is None  # undoable
    with pytest.raises(InputError, match="smaller than 3 x 3"):
        ctl.propose_box((5, 5, 6, 20))


def test_predict_tags_fills_the_strip_with_tag_probabilities(nifti_case, tmp_path, tiny_checkpoint):
    import torch

    from wiml.networks import tag_probability

    ctl = AnnotationController(result_dir=tmp_path / "out", cam_input_px=32, propagate=False)
    ctl.open(nifti_case)
    with pytest.raises(InputError, match="no weak checkpoint"):
        ctl.predict_tags()
    ctl.load_checkpoint(tiny_checkpoint)
    snap = ctl.predict_tags(batch_size=2)
    probs = np.asarray(snap.tag_probability)
    assert probs.shape == (VOLUME_SHAPE[0],) and ((probs >= 0) & (probs <= 1)).all()
    # an independent forward pass of slice 3 gives the same probability
    x = torch.from_numpy(np.asarray(ctl._network_image(3), np.float32))[None, None]
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    with torch.no_grad():
        expected = float(tag_probability(ctl.model(x).cls)[0])
    assert probs[3] == pytest.approx(expected, abs=1e-5)


def test_improve_proposals_fine_tunes_in_the_background_and_segment_uses_it(
    nifti_case, tmp_path, tiny_checkpoint, interior_point
):
    from wiml.experiments.bootstrap import BootstrapConfig

    ctl = AnnotationController(result_dir=tmp_path / "out", cam_input_px=32, propagate=False)
    ctl.open(nifti_case)
    with pytest.raises(InputError, match="no weak checkpoint"):
        ctl.improve_proposals()
    ctl.load_checkpoint(tiny_checkpoint)
    with pytest.raises(InputError, match="no strong label"):
        ctl.improve_proposals()
    ctl.set_slice(2)
    ctl.add_click(*interior_point(ctl.ground_truth), foreground=True)
    ctl.set_tag(0, index=4)
    before = [p.detach().clone() for p in ctl.model.parameters()]
    snap = ctl.improve_proposals(
        BootstrapConfig(max_steps=3, max_seconds=20, batch_size=2, strong_per_batch=1)
    )
    assert "1 strong label(s)" in snap.message and "tag(s)" in snap.message  # returned at once
    assert ctl._updater.wait(120) and ctl._updater.updates[-1].ok and ctl._updater.updates[-1].steps == 3
    # the weak model itself is untouched; the improved copy proposes
    assert all((a == b).all() for a, b in zip(before, ctl.model.parameters()))
    ctl.set_slice(1)
    snap = ctl.segment()
    assert snap.proposal == "bootstrap" and "improved model (update 1)" in snap.message


def test_a_change_that_left_no_mask_does_not_block_closing(nifti_case, tmp_path, interior_point):
    ctl = AnnotationController(result_dir=tmp_path / "out")
    ctl.open(nifti_case)
    ctl.add_click(*interior_point(ctl.ground_truth), foreground=True)
    ctl.save()
    ctl.set_slice(3)  # a propagated proposal ...
    ctl.undo()  # ... dropped: a change, but nothing to write
    assert ctl.dirty and ctl.mask is None
    ctl.set_slice(2)
    snap = ctl.save(include_shown=False)  # the question before closing: no error, nothing written
    assert not ctl.dirty and snap.saved == ()
    ctl.set_slice(4)
    with pytest.raises(InputError, match="nothing to save"):  # an explicit Save of nothing still says so
        ctl.save()
