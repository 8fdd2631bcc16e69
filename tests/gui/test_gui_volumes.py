"""Whole volumes in the window, never losing a click: the three losses found on the real IRCADb DICOM series
(issue 10) as regression tests, plus the wheel, the slice strip, tags and the recovery prompt."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

pytest.importorskip("PyQt5")
pytest.importorskip("pytestqt")

from PyQt5.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PyQt5.QtWidgets import QMessageBox  # noqa: E402

from wiml.annotator.controller import FINISHED, AnnotationController  # noqa: E402
from wiml.gui.window import AnnotatorWindow  # noqa: E402

pytestmark = pytest.mark.gui
TIMEOUT_MS = 60000


class Asker:
    """Stands in for the message box: records every question and gives a fixed answer."""

    def __init__(self, answer) -> None:
        self.answer, self.questions = answer, []

    def __call__(self, title, text, buttons, default):
        self.questions.append((title, text))
        return self.answer


def make_window(qtbot, result_dir, answer=QMessageBox.Save, **controller_args):
    ctl = AnnotationController(result_dir=result_dir, **controller_args)
    win = AnnotatorWindow(ctl, ask_to_save=True)
    win.ask = Asker(answer)
    qtbot.addWidget(win)
    win.resize(900, 800)
    win.show()
    qtbot.waitExposed(win)
    return win


def wait_idle(qtbot, win):
    qtbot.waitUntil(lambda: win.worker.pending == 0, timeout=TIMEOUT_MS)
    return win.snapshot


def interior(mask):
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(np.pad(mask > 0, 1))[1:-1, 1:-1]
    r, c = np.unravel_index(int(dist.argmax()), dist.shape)
    return int(r), int(c)


def saved_volume(result_dir, name="PATIENT_DICOM"):
    path = result_dir / "strong_label" / f"{name}.nii.gz"
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture(scope="module")
def ircadb(shared_data):
    folder = shared_data / "ircadb_patient1" / "PATIENT_DICOM"
    if not folder.is_dir():
        pytest.skip(f"IRCADb patient 1 not found at {folder}")
    return folder


@pytest.mark.realdata
def test_close_after_moving_on_saves_the_clicked_slice(qtbot, ircadb, tmp_path):
    """Click on slice 80, move to 81, close, answer Save: slice 80 is written (it used to be lost)."""
    win = make_window(qtbot, tmp_path / "out")
    win.open_path(ircadb)
    snap = wait_idle(qtbot, win)
    assert snap.depth == 129 and snap.ground_truth is not None  # MASKS_DICOM/liver found as the reference
    win.set_slice(79)  # shown as "slice 80"
    snap = wait_idle(qtbot, win)
    win.click(*interior(snap.ground_truth), True)
    win.set_slice(80)
    wait_idle(qtbot, win)
    assert win.close()
    assert len(win.ask.questions) == 1 and "1 slice(s)" in win.ask.questions[0][1]
    label = saved_volume(tmp_path / "out")
    labelled = [i for i in range(label.shape[0]) if label[i].any()]
    assert len(labelled) == 1  # slice 80 only: the untouched proposal on 81 is not saved as a label
    assert (tmp_path / "out" / "recording" / "PATIENT_DICOM_0079.json").is_file()


@pytest.mark.realdata
def test_close_right_after_two_clicks_asks_and_keeps_both(qtbot, ircadb, tmp_path):
    """Two clicks then close at once, while the refinements are still queued: the question is asked."""
    win = make_window(qtbot, tmp_path / "out")
    win.open_path(ircadb)
    snap = wait_idle(qtbot, win)
    r, c = interior(snap.ground_truth)
    win.click(r, c, True)
    win.click(r + 10, c + 10, True)
    assert win.worker.pending > 0  # still refining
    assert win.close()
    assert len(win.ask.questions) == 1
    from wiml.data.wia_result import read_recording

    rec = read_recording(tmp_path / "out" / "recording" / f"PATIENT_DICOM_{snap.slice_index:04d}.json")
    assert len(rec.clicks) == 2


def test_next_image_right_after_two_clicks_asks(qtbot, png_case, tmp_path):
    """Two clicks then N at once: the question is asked; Cancel keeps the image and both clicks."""
    win = make_window(qtbot, tmp_path / "out", answer=QMessageBox.Cancel)
    win.open_path(png_case)
    wait_idle(qtbot, win)
    win.click(30, 42, True)
    win.click(20, 30, True)
    win.act_next.trigger()
    snap = wait_idle(qtbot, win)
    assert len(win.ask.questions) == 1
    assert snap.image_path == png_case and len(snap.clicks) == 2
    win.ask.answer = QMessageBox.Discard
    win.act_next.trigger()
    snap = wait_idle(qtbot, win)
    assert snap.image_path.name == "z2.png"
    win.ask_to_save = False


@pytest.mark.realdata
def test_reopen_and_save_keeps_the_slices_saved_before(qtbot, ircadb, tmp_path):
    """Save slices 55, 56, 66; quit; reopen; save 70: the label volume holds all four, the old one is kept."""
    out = tmp_path / "out"
    win = make_window(qtbot, out, propagate=False)
    win.open_path(ircadb)
    wait_idle(qtbot, win)
    for index in (54, 55, 65):  # shown as slices 55, 56, 66
        win.set_slice(index)
        snap = wait_idle(qtbot, win)
        win.click(*interior(snap.ground_truth), True)
        win.save()
        wait_idle(qtbot, win)
    assert win.close() and win.ask.questions == []  # everything was saved: no question

    win = make_window(qtbot, out, propagate=False)
    win.open_path(ircadb)
    snap = wait_idle(qtbot, win)
    assert [i for i, s in enumerate(snap.slice_status) if s == FINISHED] == [54, 55, 65]
    win.set_slice(69)  # slice 70
    snap = wait_idle(qtbot, win)
    win.click(*interior(snap.ground_truth), True)
    win.save()
    wait_idle(qtbot, win)
    label = saved_volume(out)
    # the file is in the series' own orientation; the slice axis is the same for this axial series
    labelled = sorted(i for i in range(label.shape[0]) if label[i].any())
    assert len(labelled) == 4, labelled
    assert (out / "strong_label" / "PATIENT_DICOM.v3.nii.gz").is_file()  # previous versions kept
    win.ask_to_save = False


def test_wheel_changes_slice_ctrl_wheel_zooms_and_strip_shows_tags(qtbot, nifti_case, tmp_path):
    from PyQt5.QtGui import QWheelEvent
    from PyQt5.QtWidgets import QApplication

    win = make_window(qtbot, tmp_path / "out", propagate=False)
    win.open_path(nifti_case)
    snap = wait_idle(qtbot, win)
    start = snap.slice_index
    viewport = win.canvas.viewport()
    centre = QPointF(viewport.rect().center())

    def wheel(modifiers):
        event = QWheelEvent(
            centre, centre, QPoint(0, 0), QPoint(0, 120), Qt.NoButton, modifiers, Qt.NoScrollPhase, False
        )
        QApplication.sendEvent(viewport, event)

    scale = win.canvas.scale_factor
    wheel(Qt.NoModifier)
    qtbot.waitUntil(lambda: win.snapshot.slice_index == start + 1, timeout=TIMEOUT_MS)
    assert win.canvas.scale_factor == pytest.approx(scale)
    wheel(Qt.ControlModifier)
    assert win.canvas.scale_factor == pytest.approx(scale * 1.25)
    wait_idle(qtbot, win)
    win.act_tag_present.trigger()
    snap = wait_idle(qtbot, win)
    assert snap.tags[start + 1] == 1 and win.slice_strip.tags == snap.tags
    # a click on the strip's first column goes to slice 0
    qtbot.mouseClick(win.slice_strip, Qt.LeftButton, pos=QPoint(1, win.slice_strip.height() // 2))
    qtbot.waitUntil(lambda: win.snapshot.slice_index == 0, timeout=TIMEOUT_MS)
    win.ask_to_save = False


def test_recovery_is_offered_after_a_crash(qtbot, nifti_case, tmp_path):
    win = make_window(qtbot, tmp_path / "out", propagate=False)
    win.open_path(nifti_case)
    snap = wait_idle(qtbot, win)
    win.click(*interior(snap.ground_truth), True)
    mask = wait_idle(qtbot, win).mask.copy()
    win.ask_to_save = False  # the "crash": the window goes without saving
    win.close()

    again = make_window(qtbot, tmp_path / "out", answer=QMessageBox.Yes, propagate=False)
    again.open_path(nifti_case)
    qtbot.waitUntil(lambda: again.ask.questions != [], timeout=TIMEOUT_MS)
    assert "Restore" in again.ask.questions[0][0]
    snap = wait_idle(qtbot, again)
    qtbot.waitUntil(lambda: again.snapshot.mask is not None, timeout=TIMEOUT_MS)
    assert np.array_equal(again.snapshot.mask, mask) and again.controller.dirty
    again.ask_to_save = False


def test_brush_drag_shift_drag_window_and_mr_presets(qtbot, png_case, tmp_path):
    from PyQt5.QtCore import QEvent
    from PyQt5.QtGui import QMouseEvent
    from PyQt5.QtWidgets import QApplication

    win = make_window(qtbot, tmp_path / "out")
    win.open_path(png_case)
    wait_idle(qtbot, win)
    assert win.preset_box.count() > 1 and "Full range" in win.preset_box.itemText(1)  # 8-bit: percentiles
    viewport = win.canvas.viewport()

    def at(row, col):
        return win.canvas.mapFromScene(QPointF(col + 0.5, row + 0.5))

    def drag(start, end, modifiers=Qt.NoModifier):
        qtbot.mousePress(viewport, Qt.LeftButton, modifiers, start)
        for t in (0.5, 1.0):
            pos = start + (end - start) * t
            QApplication.sendEvent(
                viewport, QMouseEvent(QEvent.MouseMove, QPointF(pos), Qt.NoButton, Qt.LeftButton, modifiers)
            )
        qtbot.mouseRelease(viewport, Qt.LeftButton, modifiers, end)

    win.act_brush.trigger()
    assert win.canvas.mode == "brush"
    win.brush_box.setValue(1)
    drag(at(5, 5), at(5, 25))
    snap = wait_idle(qtbot, win)
    assert snap.mask is not None and snap.mask[5, 5:26].all() and snap.clicks == ()
    win.act_click_tool.trigger()
    assert win.canvas.mode == "click"
    width = win.width_box.value()
    drag(at(30, 10), at(30, 40), Qt.ShiftModifier)  # Shift + drag right: a wider window, no click
    assert win.width_box.value() > width and wait_idle(qtbot, win).clicks == ()
    win.ask_to_save = False


def test_box_tool_drag_gives_a_box_proposal(qtbot, png_case, tmp_path):
    from PyQt5.QtCore import QEvent
    from PyQt5.QtGui import QMouseEvent
    from PyQt5.QtWidgets import QApplication

    win = make_window(qtbot, tmp_path / "out")
    win.open_path(png_case)
    snap = wait_idle(qtbot, win)
    rows, cols = np.nonzero(snap.ground_truth)
    viewport = win.canvas.viewport()
    start = win.canvas.mapFromScene(QPointF(cols.min() - 1.5, rows.min() - 1.5))
    end = win.canvas.mapFromScene(QPointF(cols.max() + 2.5, rows.max() + 2.5))
    win.act_box.trigger()
    qtbot.mousePress(viewport, Qt.LeftButton, Qt.NoModifier, start)
    QApplication.sendEvent(
        viewport, QMouseEvent(QEvent.MouseMove, QPointF(end), Qt.NoButton, Qt.LeftButton, Qt.NoModifier)
    )
    qtbot.mouseRelease(viewport, Qt.LeftButton, Qt.NoModifier, end)
    snap = wait_idle(qtbot, win)
    assert snap.proposal == "box" and snap.dice > 0.85 and win.canvas.mode == "click"
    win.ask_to_save = False
