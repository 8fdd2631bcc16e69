"""The PyQt5 window, offscreen: load -> segment -> clicks (real mouse events) -> save, the worker thread,
the no-checkpoint message, window/level, zoom, opacity and the slice slider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import SimpleITK as sitk

pytest.importorskip("PyQt5")
pytest.importorskip("pytestqt")

from annotator_fixtures import PNG_SHAPE, VOLUME_SHAPE  # noqa: E402
from PyQt5.QtCore import QPointF, Qt  # noqa: E402

from wiml.annotator.controller import AnnotationController  # noqa: E402
from wiml.gui.app import build_parser, resolve_start_image  # noqa: E402
from wiml.gui.window import AnnotatorWindow  # noqa: E402
from wiml.interactive import RefinementSession  # noqa: E402

pytestmark = pytest.mark.gui
TIMEOUT_MS = 20000


class ThreadRecordingSession(RefinementSession):
    """A RefinementSession that records which thread ran each click."""

    threads: list[int] = []

    def add_click(self, row, col, foreground):
        ThreadRecordingSession.threads.append(threading.get_ident())
        return super().add_click(row, col, foreground)


@pytest.fixture
def window(qtbot, tmp_path):
    ctl = AnnotationController(result_dir=tmp_path / "result", session_factory=ThreadRecordingSession)
    win = AnnotatorWindow(ctl, start_folder=tmp_path, ask_to_save=False)
    qtbot.addWidget(win)
    win.resize(900, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.worker.shutdown()


def run(qtbot, win, action, *args):
    """Trigger a window action and wait until the worker has drawn its snapshot."""
    with qtbot.waitSignal(win.snapshot_shown, timeout=TIMEOUT_MS) as blocker:
        action(*args)
    return blocker.args[0]


def click_pixel(qtbot, win, row, col, button=Qt.LeftButton):
    """A real mouse click on the canvas at image pixel (row, col); waits for the refined mask."""
    pos = win.canvas.mapFromScene(QPointF(col + 0.5, row + 0.5))
    with qtbot.waitSignal(win.snapshot_shown, timeout=TIMEOUT_MS) as blocker:
        qtbot.mouseClick(win.canvas.viewport(), button, pos=pos)
    return blocker.args[0]


def test_load_segment_click_save_png(qtbot, window, png_case, tmp_path, interior_point):
    snap = run(qtbot, window, window.open_path, png_case)
    assert snap.raw.shape == PNG_SHAPE and window.canvas.image_shape == PNG_SHAPE
    assert not window.slice_row.isVisible()  # a 2-D image has no slice slider
    assert "no weak checkpoint" in window.banner.text() and window.banner.isVisible()
    run(qtbot, window, window.segment)
    ThreadRecordingSession.threads = []
    r, c = interior_point(snap.ground_truth)
    snap = click_pixel(qtbot, window, r, c)
    assert snap.clicks[-1].row == r and snap.clicks[-1].col == c and snap.clicks[-1].label == 1
    assert snap.mask[r, c] == 1 and snap.dice > 0.1
    snap = click_pixel(qtbot, window, 3, 3, Qt.RightButton)
    assert snap.clicks[-1].label == 0 and snap.mask[3, 3] == 0
    # the refinement ran on the worker thread, never on the GUI thread
    assert len(ThreadRecordingSession.threads) == 2
    assert threading.main_thread().ident not in ThreadRecordingSession.threads
    assert "clicks: 2 (1 fg, 1 bg)" in window.clicks_label.text()
    assert window.metrics_label.text().startswith("Dice ")
    snap = run(qtbot, window, window.undo)
    assert len(snap.clicks) == 1
    snap = run(qtbot, window, window.save)
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "result" / "strong_label" / "case.png")))
    assert label.shape == PNG_SHAPE and np.array_equal(label > 0, snap.mask > 0)
    rec = json.loads((tmp_path / "result" / "recording" / "case.json").read_text())
    assert [(k["row"], k["col"]) for k in rec["clicks"]] == [(r, c)]

    # reopen the same image and save again: the previous version is kept
    run(qtbot, window, window.open_path, png_case)
    click_pixel(qtbot, window, r, c)
    click_pixel(qtbot, window, r + 5, c + 5)
    run(qtbot, window, window.save)
    assert (tmp_path / "result" / "strong_label" / "case.v1.png").is_file()
    assert len(json.loads((tmp_path / "result" / "recording" / "case.v1.json").read_text())["clicks"]) == 1
    assert len(json.loads((tmp_path / "result" / "recording" / "case.json").read_text())["clicks"]) == 2

    # Save & Next: saves, then opens the next image of the folder
    click_pixel(qtbot, window, r, c)
    with qtbot.waitSignal(window.snapshot_shown, timeout=TIMEOUT_MS):
        window.act_save_next.trigger()
    qtbot.waitUntil(lambda: window.worker.pending == 0, timeout=TIMEOUT_MS)
    snap = window.snapshot
    assert (tmp_path / "result" / "strong_label" / "case.v2.png").is_file()
    assert snap.image_path.name == "z2.png" and snap.ground_truth is None
    assert window.metrics_label.text() == "no ground truth"


def test_clicks_queue_in_order_while_busy(qtbot, window, png_case):
    run(qtbot, window, window.open_path, png_case)
    done = []
    window.snapshot_shown.connect(lambda s: done.append(len(s.clicks)))
    for i in range(3):  # given faster than the worker refines; applied in order, none lost
        window.click(20 + i, 30 + 3 * i, True)
    qtbot.waitUntil(lambda: window.worker.pending == 0, timeout=TIMEOUT_MS)
    assert done == [1, 2, 3]
    assert [c.col for c in window.snapshot.clicks] == [30, 33, 36]


def test_bad_checkpoint_and_bad_click_show_messages(qtbot, window, png_case, tmp_path):
    with qtbot.waitSignal(window.action_failed, timeout=TIMEOUT_MS) as blocker:
        window.load_checkpoint(tmp_path / "missing.safetensors")
    assert "not found" in blocker.args[0] and "not found" in window.banner.text()
    assert window.checkpoint_label.text() == "CAM: none (clicks only)"
    run(qtbot, window, window.open_path, png_case)
    with qtbot.waitSignal(window.action_failed, timeout=TIMEOUT_MS) as blocker:
        window.click(PNG_SHAPE[0] + 3, 0, True)
    assert "outside" in blocker.args[0] and "outside" in window.banner.text()
    run(
        qtbot, window, window.click, 30, 40, True
    )  # a good click clears the error; the checkpoint note returns
    assert "outside" not in window.banner.text() and "not found" in window.banner.text()


def test_checkpoint_menu_path_gives_cam(qtbot, tmp_path, png_case, tiny_checkpoint):
    ctl = AnnotationController(result_dir=tmp_path / "result", cam_input_px=32)
    win = AnnotatorWindow(ctl, ask_to_save=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.worker.finished, timeout=TIMEOUT_MS):
        win.load_checkpoint(tiny_checkpoint)
    assert not win.banner.isVisible() and win.checkpoint_label.text() == "CAM: best.safetensors"
    run(qtbot, win, win.open_path, png_case)
    snap = run(qtbot, win, win.segment)
    assert snap.cam is not None and snap.cam.shape == PNG_SHAPE
    win.act_show_cam.setChecked(True)
    assert win.canvas._cam_item.isVisible()
    win.worker.shutdown()


def test_volume_slider_window_level_zoom_opacity_save(qtbot, window, nifti_case, interior_point, tmp_path):
    snap = run(qtbot, window, window.open_path, nifti_case)
    assert window.slice_row.isVisible() and window.slice_slider.maximum() == VOLUME_SHAPE[0] - 1
    assert window.slice_slider.value() == snap.slice_index == 2
    assert (window.level_box.value(), window.width_box.value()) == (50.0, 300.0)  # CT: wiml prepare's window
    before = window.canvas._image_item.pixmap().toImage()
    window.width_box.setValue(2000.0)
    assert window.canvas._image_item.pixmap().toImage() != before
    window.reset_window()
    assert window.width_box.value() == 300.0
    snap = run(qtbot, window, window.set_slice, 1)
    assert snap.slice_index == 1 and snap.name == "vol_0001"
    scale = window.canvas.scale_factor
    window.act_zoom_in.trigger()
    assert window.canvas.scale_factor == pytest.approx(scale * 1.25)
    window.canvas.fit()
    window.opacity_slider.setValue(70)
    assert window.canvas.opacity == pytest.approx(0.7)
    snap = click_pixel(qtbot, window, *interior_point(snap.ground_truth))
    run(qtbot, window, window.save)
    label = sitk.ReadImage(str(tmp_path / "result" / "strong_label" / "vol.nii.gz"))
    source = sitk.ReadImage(str(nifti_case))
    assert label.GetSize() == source.GetSize() and label.GetSpacing() == source.GetSpacing()
    assert label.GetOrigin() == source.GetOrigin() and label.GetDirection() == source.GetDirection()
    assert sitk.GetArrayFromImage(label)[1].sum() == snap.mask.sum() > 0
    assert (tmp_path / "result" / "recording" / "vol_0001.json").is_file()


def test_parser_defaults_and_start_image(png_case, tmp_path):
    parser = build_parser(default_image=png_case.parent, default_checkpoint=tmp_path / "best.safetensors")
    args = parser.parse_args([])
    assert args.image == png_case.parent and args.checkpoint == tmp_path / "best.safetensors"
    assert resolve_start_image(args.image) == png_case  # a folder of slices opens its first image
    args = parser.parse_args(
        [str(png_case), "--result-dir", str(tmp_path / "r"), "--set", "backend=geodistk"]
    )
    assert args.result_dir == tmp_path / "r" and args.overrides == ["backend=geodistk"]


def test_main_refuses_bad_refinement_override(capsys):
    from wiml.cli.annotate import main

    assert main(["--set", "lam=-1"]) == 2
    assert "lam" in capsys.readouterr().err
    assert main(["--set", "no_such_key=1"]) == 2
    assert "unknown key" in capsys.readouterr().err


def test_wia_main_help_resolves_defaults_from_its_location(project_root, tmp_path):
    # a wide terminal, so that argparse does not break a long checkout path across lines
    env = {**os.environ, "COLUMNS": "1000"}
    out = subprocess.run(
        [sys.executable, str(project_root / "WIA" / "main.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert str(project_root / "data_source") in text
    assert str(project_root / "runs" / "demo" / "weak" / "best.safetensors") in text


@pytest.mark.slow  # starts the refinement helper process
def test_start_opens_image_and_says_checkpoint_is_missing(qtbot, png_case, tmp_path):
    from wiml.gui.app import create_window

    missing = tmp_path / "runs" / "demo" / "weak" / "best.safetensors"
    args = build_parser().parse_args(
        [str(png_case.parent), "--checkpoint", str(missing), "--result-dir", str(tmp_path / "r")]
    )
    win = create_window(args)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.worker.pending == 0 and win.snapshot.raw is not None, timeout=TIMEOUT_MS)
    assert win.snapshot.raw.shape == PNG_SHAPE and "case.png" in win.windowTitle()
    assert "weak checkpoint not found" in win.banner.text() and str(missing) in win.banner.text()
    assert "clicks only" in win.banner.text()
    assert win.controller.result_dir == tmp_path / "r"
    assert (
        win.controller._server is not None and win.controller._server.alive
    )  # refinement in a helper process
    snap = click_pixel(qtbot, win, 30, 42)
    assert snap.mask[30, 42] == 1 and snap.dice > 0.1
    win.ask_to_save = False  # unsaved click: closing would ask (a modal dialog) otherwise
    win.close()  # stops the worker thread and the helper process
    assert win.controller._server is None


def test_ctrl_drag_pans_and_is_not_a_click(qtbot, window, png_case):
    from PyQt5.QtCore import QEvent, QPoint
    from PyQt5.QtGui import QMouseEvent
    from PyQt5.QtWidgets import QApplication

    run(qtbot, window, window.open_path, png_case)
    window.canvas.zoom(3.0)
    bar = window.canvas.horizontalScrollBar()
    start = bar.value()
    viewport = window.canvas.viewport()
    centre = viewport.rect().center()
    assert bar.maximum() > start + 60
    qtbot.mousePress(viewport, Qt.LeftButton, Qt.ControlModifier, centre)
    # QTest's mouseMove carries no button state; send the drag event itself
    QApplication.sendEvent(
        viewport,
        QMouseEvent(
            QEvent.MouseMove, QPointF(centre + QPoint(-60, 0)), Qt.NoButton, Qt.LeftButton, Qt.ControlModifier
        ),
    )
    qtbot.mouseRelease(viewport, Qt.LeftButton, Qt.ControlModifier, centre + QPoint(-60, 0))
    assert bar.value() == start + 60
    assert window.worker.pending == 0 and window.snapshot.clicks == ()
