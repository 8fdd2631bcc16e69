"""The annotator's main window: menus, tool bar, canvas, slice slider, window/level, status bar.

Every action that touches the annotation state runs on the :class:`~wiml.gui.worker.ActionWorker` thread, in
the order it was given; the window only draws the :class:`~wiml.annotator.controller.Snapshot` each action returns.
No modal dialog opens on its own (errors go to a banner and the status bar), so the window can be driven
by tests offscreen.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

from PyQt5.QtCore import Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QGuiApplication, QKeySequence
from PyQt5.QtWidgets import (
    QAction,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStyle,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from wiml.annotator.controller import AnnotationController, Snapshot
from wiml.annotator.loading import list_images
from wiml.annotator.overlay import window_presets, window_to_uint8
from wiml.errors import WimlError
from wiml.gui.canvas import ImageCanvas
from wiml.gui.slicestrip import SliceStrip
from wiml.gui.worker import ActionWorker

logger = logging.getLogger(__name__)

_SHORTCUTS = [
    ("Left click", "foreground click"),
    ("Right click", "background click"),
    ("Wheel", "next / previous slice (volumes); zoom (2-D images)"),
    ("Ctrl + wheel", "zoom at the cursor"),
    ("Middle drag / Ctrl + left drag", "pan"),
    ("S", "Segment (CAM initial mask)"),
    ("Ctrl+Z", "Undo the last change (click, Segment, Clear, proposal)"),
    ("Ctrl+Y / Ctrl+Shift+Z", "Redo"),
    ("Delete", "Clear the clicks (undoable)"),
    ("1 / 0", "tag the slice: target present / absent"),
    ("E (twice)", "first, then last slice of the target: tags the whole volume"),
    ("Ctrl+S", "Save Segmentation"),
    ("Ctrl+Enter", "Save, then the next image / slice"),
    ("Ctrl+O", "Open Image"),
    ("Ctrl+Shift+O", "Open DICOM Folder"),
    ("N / P", "next / previous image in the folder"),
    ("PgUp / PgDn", "next / previous slice"),
    ("+ / - / F", "zoom in / out / fit"),
    ("M / G / C", "show mask / ground truth / CAM"),
    ("[ / ]", "overlay opacity down / up"),
    ("D", "box tool: drag a box around the target (the proposal starts from it)"),
    ("B / X / Esc", "brush / eraser (drag; right drag erases) / back to clicks"),
    (", / .", "brush smaller / larger"),
    ("Shift + drag", "window: right/left = wider/narrower, down/up = level up/down"),
    ("W", "reset the window/level"),
    ("Ctrl+K", "Load Checkpoint"),
    ("Ctrl+R", "Load Reference (ground truth)"),
    ("Ctrl+I", "Improve Proposals: fine-tune on the labels so far (background)"),
]

#: the one-line workflow hint shown above the image.
HINT = (
    "S: proposal from the CAM | left/right click: add/remove | Ctrl+Z / Ctrl+Y: undo/redo | "
    "wheel or PgUp/PgDn: slice | 1/0: tag present/absent, E E: target range | Ctrl+S: save | F1: all keys"
)


class AnnotatorWindow(QMainWindow):
    """Main window of the WIA annotator.

    Args:
        controller: the Qt-free annotation state (:class:`AnnotationController`).
        start_folder: folder the Open dialog starts in (``data_source/`` by default).
        ask_to_save: ask before unsaved work is dropped (opening another image, closing); tests turn it off.

    Signals:
        snapshot_shown(object): a :class:`Snapshot` was drawn (tests wait on it).
        action_failed(str): an action failed; the message is in the banner and the status bar.
    """

    snapshot_shown = pyqtSignal(object)
    action_failed = pyqtSignal(str)

    def __init__(
        self, controller: AnnotationController, start_folder: Path | None = None, ask_to_save: bool = True
    ) -> None:
        super().__init__()
        self.controller = controller
        self.start_folder = Path(start_folder) if start_folder is not None else None
        self.ask_to_save = ask_to_save
        self.snapshot = Snapshot()
        self._snapshot_at = time.perf_counter()
        self.worker = ActionWorker(self)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.busy_changed.connect(self._on_busy)
        self._level, self._width = 127.5, 255.0
        self._presets: dict[str, tuple[float, float]] = {}
        self.setWindowTitle("WIML annotator (WIA)")
        self.resize(1100, 860)
        self._build_widgets()
        self._build_actions()
        self._slice_timer = QTimer(self, singleShot=True, interval=120)
        self._slice_timer.timeout.connect(self._submit_slice)
        self._clock_timer = QTimer(self, interval=500)
        self._clock_timer.timeout.connect(self.refresh_status)
        self._clock_timer.start()
        self._update_checkpoint_banner()
        self.refresh_status()

    # ------------------------------------------------------------------ layout
    def _build_widgets(self) -> None:
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        self.banner = QLabel(central)
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.banner.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self._banner_is_error = False
        layout.addWidget(self.banner)
        self.canvas = ImageCanvas(central)
        self.canvas.set_opacity(0.3)
        self.canvas.clicked.connect(self.click)
        self.canvas.hovered.connect(self._on_hover)
        self.canvas.slice_wheel.connect(self._on_slice_wheel)
        self.canvas.stroke.connect(self.stroke)
        self.canvas.window_drag.connect(self._on_window_drag)
        self.canvas.box_drawn.connect(self.propose_box)
        self.hint = QLabel(HINT, central)
        self.hint.setStyleSheet("QLabel { color: #555; padding: 1px 4px; }")
        layout.addWidget(self.hint)
        layout.addWidget(self.canvas, 1)
        row = QHBoxLayout()
        self.slice_label = QLabel("slice -", central)
        self.slice_slider = QSlider(Qt.Horizontal, central)
        self.slice_slider.setRange(0, 0)
        self.slice_slider.valueChanged.connect(self._on_slice_slider)
        row.addWidget(self.slice_label)
        row.addWidget(self.slice_slider, 1)
        self.slice_row = QWidget(central)
        column = QVBoxLayout(self.slice_row)
        column.setContentsMargins(0, 0, 0, 0)
        self.slice_strip = SliceStrip(self.slice_row)
        self.slice_strip.slice_clicked.connect(self.set_slice)
        column.addWidget(self.slice_strip)
        column.addLayout(row)
        self.slice_row.setVisible(False)
        layout.addWidget(self.slice_row)
        self.setCentralWidget(central)

        bar = QToolBar("View", self)
        bar.setObjectName("view_toolbar")
        self.addToolBar(Qt.BottomToolBarArea, bar)
        bar.addWidget(QLabel(" Window level ", self))
        self.level_box = QDoubleSpinBox(self, decimals=1, minimum=-5000, maximum=70000, singleStep=10)
        self.level_box.setToolTip("window level (centre), in image units (HU for CT)")
        bar.addWidget(self.level_box)
        bar.addWidget(QLabel(" width ", self))
        self.width_box = QDoubleSpinBox(self, decimals=1, minimum=1, maximum=70000, singleStep=10)
        self.width_box.setToolTip("window width, in image units (HU for CT)")
        bar.addWidget(self.width_box)
        self.preset_box = QComboBox(self)
        self.preset_box.addItem("Window presets")
        self.preset_box.setToolTip(
            "window presets: CT in HU; MR and 8-bit images by percentiles of the image"
        )
        self.preset_box.activated.connect(self._on_preset)
        bar.addWidget(self.preset_box)
        self.level_box.valueChanged.connect(self._on_window_changed)
        self.width_box.valueChanged.connect(self._on_window_changed)
        bar.addSeparator()
        bar.addWidget(QLabel(" Overlay opacity ", self))
        self.opacity_slider = QSlider(Qt.Horizontal, self)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(30)
        self.opacity_slider.setFixedWidth(140)
        self.opacity_slider.setToolTip("opacity of the mask fill and the CAM ([ and ])")
        self.opacity_slider.valueChanged.connect(lambda v: self.canvas.set_opacity(v / 100.0))
        bar.addWidget(self.opacity_slider)
        bar.addSeparator()
        bar.addWidget(QLabel(" Brush ", self))
        self.brush_box = QSpinBox(self, minimum=0, maximum=60, value=3, suffix=" px")
        self.brush_box.setToolTip("brush / eraser radius in image px (, and .)")
        self.brush_box.valueChanged.connect(lambda v: setattr(self.canvas, "brush_radius_px", int(v)))
        bar.addWidget(self.brush_box)
        spacer = QWidget(self)
        spacer.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        bar.addWidget(spacer)
        self.zoom_label = QLabel("zoom 100%", self)
        self.canvas.zoom_changed.connect(lambda s: self.zoom_label.setText(f"zoom {100 * s:.0f}% "))
        bar.addWidget(self.zoom_label)

        status = self.statusBar()
        self.clicks_label = QLabel(self)
        self.time_label = QLabel(self)
        self.metrics_label = QLabel(self)
        self.pixel_label = QLabel(self)
        self.busy_label = QLabel(self)
        self.checkpoint_label = QLabel(self)
        for w in (
            self.busy_label,
            self.clicks_label,
            self.time_label,
            self.metrics_label,
            self.pixel_label,
            self.checkpoint_label,
        ):
            status.addPermanentWidget(w)

    def _action(
        self,
        text: str,
        slot,
        shortcut=None,
        tip: str = "",
        icon=None,
        checkable: bool = False,
        checked: bool = False,
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            keys = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(k) for k in keys])
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(f"{text} ({action.shortcut().toString()})" if shortcut else text)
        if checkable:
            action.setCheckable(True)
            action.setChecked(checked)
            action.toggled.connect(slot)
        else:
            action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.act_open = a(
            "&Open Image...",
            self.open_dialog,
            QKeySequence.Open,
            "open a PNG/JPEG slice or a NIfTI volume",
            QStyle.SP_DialogOpenButton,
        )
        self.act_open_dicom = a(
            "Open &DICOM Folder...",
            self.open_dicom_dialog,
            "Ctrl+Shift+O",
            "open a folder holding one DICOM series",
            QStyle.SP_DirOpenIcon,
        )
        self.act_next = a(
            "&Next Image", lambda: self.step_image(1), "N", "next image in the folder", QStyle.SP_ArrowForward
        )
        self.act_prev = a(
            "&Previous Image",
            lambda: self.step_image(-1),
            "P",
            "previous image in the folder",
            QStyle.SP_ArrowBack,
        )
        self.act_checkpoint = a(
            "Load &Checkpoint...",
            self.checkpoint_dialog,
            "Ctrl+K",
            "choose the weak checkpoint (.safetensors) used for the CAM",
        )
        self.act_result_dir = a(
            "&Result Folder...", self.result_dir_dialog, None, "choose where result/ files are written"
        )
        self.act_save = a(
            "&Save Segmentation",
            self.save,
            QKeySequence.Save,
            "write the strong label, CAM, initial mask and recording",
            QStyle.SP_DialogSaveButton,
        )
        self.act_save_next = a(
            "Save && &Next",
            self.save_and_next,
            "Ctrl+Return",
            "save, then open the next image of the folder (or the next slice of a volume)",
        )
        self.act_quit = a("&Quit", self.close, QKeySequence.Quit, "quit")
        self.act_segment = a(
            "Se&gment", self.segment, "S", "CAM of the weak model -> initial mask", QStyle.SP_MediaPlay
        )
        self.act_undo = a(
            "&Undo", self.undo, QKeySequence.Undo, "undo the last change of the slice", QStyle.SP_ArrowLeft
        )
        self.act_redo = a(
            "&Redo",
            self.redo,
            ["Ctrl+Y", "Ctrl+Shift+Z"],
            "redo the last undone change",
            QStyle.SP_ArrowRight,
        )
        self.act_clear = a(
            "&Clear",
            self.clear,
            ["Delete", "Backspace"],
            "remove every click (undoable)",
            QStyle.SP_DialogResetButton,
        )
        self.act_brush = a(
            "&Brush",
            lambda on: self.set_tool("brush" if on else "click"),
            "B",
            "drag to paint the mask (right drag erases)",
            checkable=True,
        )
        self.act_eraser = a(
            "E&raser",
            lambda on: self.set_tool("erase" if on else "click"),
            "X",
            "drag to erase the mask",
            checkable=True,
        )
        self.act_brush_smaller = a(
            "Brush -", lambda: self.brush_box.setValue(self.brush_box.value() - 1), ",", "smaller brush"
        )
        self.act_brush_larger = a(
            "Brush +", lambda: self.brush_box.setValue(self.brush_box.value() + 1), ".", "larger brush"
        )
        self.act_box = a(
            "Bo&x Proposal",
            lambda on: self.set_tool("box" if on else "click"),
            "D",
            "drag a box around the target: the proposal starts from it",
            checkable=True,
        )
        self.act_click_tool = a("Click Tool", lambda: self.set_tool("click"), "Escape", "back to clicks")
        self.act_tag_present = a(
            "Tag: Target &Present", lambda: self.set_tag(1), "1", "the target is on this slice"
        )
        self.act_tag_absent = a(
            "Tag: Target &Absent", lambda: self.set_tag(0), "0", "the target is not on this slice"
        )
        self.act_tag_range = a(
            "Tag Target &Range (first, last)",
            self.mark_range,
            "E",
            "press on the first slice of the target, then on the last: tags the whole volume",
        )
        self.act_improve = a(
            "&Improve Proposals",
            self.improve_proposals,
            "Ctrl+I",
            "fine-tune the weak model in the background on the labels so far; Segment then proposes from it",
        )
        self.act_predict_tags = a(
            "Predict Tags (weak model)",
            self.predict_tags,
            None,
            "tag probability of every slice on the strip",
        )
        self.act_reference = a(
            "Load &Reference...",
            self.reference_dialog,
            "Ctrl+R",
            "choose the ground truth (a mask file or DICOM mask folder) for the live Dice/IoU",
        )
        self.act_zoom_in = a("Zoom &In", lambda: self.canvas.zoom(1.25), ["+", "=", "Ctrl++"], "zoom in")
        self.act_zoom_out = a("Zoom &Out", lambda: self.canvas.zoom(0.8), ["-", "Ctrl+-"], "zoom out")
        self.act_fit = a("&Fit", self.canvas.fit, "F", "fit the image to the window")
        self.act_show_mask = a(
            "Show &Mask",
            lambda on: self.canvas.set_visibility(mask=on),
            "M",
            "show the current mask (green)",
            checkable=True,
            checked=True,
        )
        self.act_show_gt = a(
            "Show &Ground Truth",
            lambda on: self.canvas.set_visibility(gt=on),
            "G",
            "show the ground truth (blue) when a label/ mask exists",
            checkable=True,
            checked=True,
        )
        self.act_show_cam = a(
            "Show C&AM",
            lambda on: self.canvas.set_visibility(cam=on),
            "C",
            "show the class activation map",
            checkable=True,
            checked=False,
        )
        self.act_opacity_down = a(
            "Opacity -",
            lambda: self.opacity_slider.setValue(self.opacity_slider.value() - 10),
            "[",
            "overlay opacity down",
        )
        self.act_opacity_up = a(
            "Opacity +",
            lambda: self.opacity_slider.setValue(self.opacity_slider.value() + 10),
            "]",
            "overlay opacity up",
        )
        self.act_reset_window = a(
            "Reset &Window", self.reset_window, "W", "default window/level of the image"
        )
        self.act_next_slice = a("Next Slice", lambda: self.step_slice(1), "PgUp", "next slice")
        self.act_prev_slice = a("Previous Slice", lambda: self.step_slice(-1), "PgDown", "previous slice")
        self.act_shortcuts = a("&Keyboard Shortcuts", self.show_shortcuts, "F1", "list the shortcuts")

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for act in (
            self.act_open,
            self.act_open_dicom,
            self.act_next,
            self.act_prev,
            None,
            self.act_checkpoint,
            self.act_reference,
            self.act_result_dir,
            None,
            self.act_save,
            self.act_save_next,
            None,
            self.act_quit,
        ):
            file_menu.addSeparator() if act is None else file_menu.addAction(act)
        edit_menu = menu.addMenu("&Annotate")
        for act in (
            self.act_segment,
            self.act_improve,
            self.act_undo,
            self.act_redo,
            self.act_clear,
            self.act_box,
            self.act_brush,
            self.act_eraser,
            self.act_brush_smaller,
            self.act_brush_larger,
            self.act_click_tool,
        ):
            edit_menu.addAction(act)
        tag_menu = menu.addMenu("&Tags")
        for act in (self.act_tag_present, self.act_tag_absent, self.act_tag_range, self.act_predict_tags):
            tag_menu.addAction(act)
        view_menu = menu.addMenu("&View")
        for act in (
            self.act_zoom_in,
            self.act_zoom_out,
            self.act_fit,
            None,
            self.act_show_mask,
            self.act_show_gt,
            self.act_show_cam,
            None,
            self.act_opacity_down,
            self.act_opacity_up,
            self.act_reset_window,
            None,
            self.act_next_slice,
            self.act_prev_slice,
        ):
            view_menu.addSeparator() if act is None else view_menu.addAction(act)
        menu.addMenu("&Help").addAction(self.act_shortcuts)

        tools = QToolBar("Annotate", self)
        tools.setObjectName("annotate_toolbar")
        tools.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        for act in (
            self.act_open,
            self.act_prev,
            self.act_next,
            None,
            self.act_segment,
            self.act_undo,
            self.act_redo,
            self.act_clear,
            self.act_brush,
            self.act_eraser,
            self.act_save,
            None,
            self.act_fit,
        ):
            tools.addSeparator() if act is None else tools.addAction(act)
        self.addToolBar(Qt.TopToolBarArea, tools)

    # ------------------------------------------------------------------ actions (queued on the worker)
    def _submit(self, fn, *args, **kwargs) -> int:
        return self.worker.submit(functools.partial(fn, *args, **kwargs))

    def open_path(self, path: str | Path) -> None:
        """Open an image, a volume or a DICOM folder (asks to save unsaved work first)."""
        if not self._confirm_discard():
            return
        path = Path(path)
        self.statusBar().showMessage(f"loading {path.name} ...")
        self.busy_label.setText(f"loading {path.name}...")
        self._submit(self.controller.open, path)

    def segment(self) -> None:
        """CAM of the weak model -> initial mask (empty without a checkpoint); drops the slice's clicks."""
        self._submit(self.controller.segment)

    def click(self, row: int, col: int, foreground: bool) -> None:
        """A foreground (left) or background (right) click at pixel (row, col)."""
        if self.snapshot.raw is None:
            self.show_error("open an image first (File > Open Image)")
            return
        self._submit(self.controller.add_click, row, col, foreground)

    def undo(self) -> None:
        """Undo the last change of the shown slice (a click, Segment, Clear, a proposal)."""
        self._submit(self.controller.undo)

    def redo(self) -> None:
        """Redo the last undone change of the shown slice."""
        self._submit(self.controller.redo)

    def set_tool(self, tool: str) -> None:
        """``click`` (left/right clicks refine), ``brush`` or ``erase`` (drag to paint / erase)."""
        self.canvas.mode = tool
        for action, name in ((self.act_brush, "brush"), (self.act_eraser, "erase"), (self.act_box, "box")):
            action.blockSignals(True)
            action.setChecked(tool == name)
            action.blockSignals(False)
        self.canvas.setCursor(Qt.CrossCursor if tool != "click" else Qt.ArrowCursor)

    def propose_box(self, row0: int, col0: int, row1: int, col1: int) -> None:
        """A box drawn around the target: the slice starts again from the box proposal (undoable)."""
        if self.snapshot.raw is None:
            self.show_error("open an image first (File > Open Image)")
            return
        self._submit(self.controller.propose_box, (row0, col0, row1, col1))
        self.set_tool("click")

    def stroke(self, points, erase: bool) -> None:
        """A brush (or eraser) stroke over pixels [(row, col), ...]: one undoable step."""
        if self.snapshot.raw is None:
            self.show_error("open an image first (File > Open Image)")
            return
        self._submit(self.controller.brush, points, self.brush_box.value(), erase)

    def _on_window_drag(self, dx: int, dy: int) -> None:
        # Shift + drag: right = wider window, down = higher level, scaled to the image's default width
        scale = max(self.snapshot.window[1], 1.0) / 300.0
        self._set_window(self._level + dy * scale, max(self._width + dx * scale, 1.0))
        self._render_image()

    def set_tag(self, tag: int | None) -> None:
        """Tag the shown slice: 1 target present, 0 absent."""
        self._submit(self.controller.set_tag, tag)

    def mark_range(self) -> None:
        """First press: first slice of the target; second press: last slice (tags the whole volume)."""
        self._submit(self.controller.mark_range)

    def improve_proposals(self) -> None:
        """Start a background fine-tune on the labels so far (returns at once; Segment uses it once done)."""
        self._submit(self.controller.improve_proposals)

    def predict_tags(self) -> None:
        """Tag probabilities of every slice from the weak model (drawn on the slice strip)."""
        self._submit(self.controller.predict_tags)

    def clear(self) -> None:
        """Remove every click of the slice; back to its proposal (undoable)."""
        self._submit(self.controller.clear)

    def save(self) -> None:
        """Write CAM, initial mask, strong label and recording under result/ (after every queued click)."""
        self._submit(self.controller.save)

    def save_and_next(self) -> None:
        """Save, then go on: the next slice of a volume, or the next image of the folder."""
        self.save()
        if self.snapshot.depth > 1:
            self.set_slice(min(self.snapshot.slice_index + 1, self.snapshot.depth - 1))
        else:
            self.step_image(1)

    def load_checkpoint(self, path: str | Path) -> None:
        """Load a weak checkpoint (on the worker; the banner says whether it worked)."""
        controller = self.controller

        def job() -> str:
            try:
                return controller.load_checkpoint(Path(path))
            except WimlError as exc:  # the banner says what failed and that clicks still work
                raise WimlError(controller.checkpoint_status) from exc

        self.worker.submit(job)

    def set_slice(self, index: int) -> None:
        """Show slice ``index`` of a volume now (the slider itself waits 120 ms for the drag to settle)."""
        self.slice_slider.setValue(int(index))
        self._slice_timer.stop()
        self._submit_slice()

    def _submit_slice(self) -> None:
        if self.snapshot.depth > 1 and self.slice_slider.value() != self.snapshot.slice_index:
            self._submit(self.controller.set_slice, self.slice_slider.value())

    def step_slice(self, delta: int) -> None:
        """Move the slice slider by ``delta`` slices."""
        if self.snapshot.depth > 1:
            self.slice_slider.setValue(self.slice_slider.value() + delta)

    def _on_slice_wheel(self, steps: int) -> None:
        # volumes: the wheel moves through the slices (as in ITK-SNAP and Slicer); 2-D images: it zooms
        if self.snapshot.depth > 1:
            self.step_slice(steps)
        else:
            self.canvas.zoom(1.25**steps)

    def step_image(self, delta: int) -> None:
        """Open the next (delta=1) or previous (-1) image of the current image's folder."""
        path = self.snapshot.image_path
        if path is None or path.is_dir():
            return
        files = list_images(path.parent)
        if path not in files:
            return
        index = files.index(path) + delta
        if 0 <= index < len(files):
            self.open_path(files[index])
        else:
            self.statusBar().showMessage("no more images in this folder", 3000)

    # ------------------------------------------------------------------ dialogs
    def _dialog_folder(self) -> str:
        if self.snapshot.image_path is not None:
            return str(self.snapshot.image_path.parent)
        return str(self.start_folder or Path.home())

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open image",
            self._dialog_folder(),
            "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.nii *.nii.gz *.mha *.mhd *.nrrd *.dcm);;"
            "Prepared slices (*.npz);;All files (*)",
        )
        if path:
            self.open_path(path)

    def open_dicom_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open DICOM series folder", self._dialog_folder())
        if path:
            self.open_path(path)

    def checkpoint_dialog(self) -> None:
        current = self.controller.checkpoint_path
        start = str(current.parent) if current is not None else self._dialog_folder()
        path, _ = QFileDialog.getOpenFileName(
            self, "Load weak checkpoint", start, "WIML checkpoints (*.safetensors);;All files (*)"
        )
        if path:
            self.load_checkpoint(path)

    def reference_dialog(self) -> None:
        """Choose a reference (ground truth) file, or a DICOM mask folder when the file dialog is cancelled."""
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Load reference (ground truth)",
            self._dialog_folder(),
            "Masks (*.png *.jpg *.nii *.nii.gz *.mha *.nrrd *.dcm);;All files (*)",
        )
        if not path and self.snapshot.depth > 1:
            path = QFileDialog.getExistingDirectory(
                self, "Reference DICOM mask folder", self._dialog_folder()
            )
        if path:
            self._submit(self.controller.load_reference, Path(path))

    def result_dir_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Result folder", str(self.controller.result_dir or self._dialog_folder())
        )
        if path:
            self._submit(setattr, self.controller, "result_dir", Path(path))
            self.statusBar().showMessage(f"results will be written under {path}", 5000)

    def show_shortcuts(self) -> None:
        """List the mouse and keyboard shortcuts (F1)."""
        rows = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;{v}</td></tr>" for k, v in _SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def ask(self, title: str, text: str, buttons, default):
        """Ask a question in a message box; returns the button chosen. Without a screen to answer on
        (offscreen) the default is taken and logged. Tests replace this method."""
        if QGuiApplication.platformName() in ("offscreen", "minimal"):
            logger.info("%s: %s -> default answer", title, text)
            return default
        return QMessageBox.question(self, title, text, buttons, default)

    def _confirm_discard(self) -> bool:
        """Before unsaved work is dropped (another image, closing): wait for the queued actions, then ask
        whether to save every unsaved slice. Save saves them all and waits; False = stay (cancelled, or the
        save failed)."""
        if not self.ask_to_save:
            return True
        if self.worker.pending:
            self.statusBar().showMessage("finishing the queued refinements ...")
            self.worker.wait_idle()
        if not self.controller.dirty:
            return True
        slices = self.controller.dirty_slices
        what = (
            f"{len(slices)} slice(s) of {self.snapshot.image_path.name}"
            if self.snapshot.depth > 1 and slices
            else self.snapshot.name
        )
        answer = self.ask(
            "Unsaved annotation",
            f"Save the unsaved annotation of {what} first?",
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel,
            QMessageBox.Save,
        )
        if answer == QMessageBox.Cancel:
            return False
        if answer == QMessageBox.Save:
            return self.save_now()
        self._submit(self.controller.discard_unsaved)
        self.worker.wait_idle()
        return True

    def save_now(self) -> bool:
        """Save on the worker and wait for it; True when the save succeeded."""
        failed: list[str] = []

        def on_failed(_job: int, message: str) -> None:
            failed.append(message)

        self.worker.failed.connect(on_failed)
        try:
            self._submit(self.controller.save, include_shown=False)
            self.worker.wait_idle()
        finally:
            self.worker.failed.disconnect(on_failed)
        return not failed and not self.controller.dirty

    # ------------------------------------------------------------------ results from the worker
    def _on_finished(self, _job_id: int, result: object) -> None:
        if isinstance(result, Snapshot):
            self.show_snapshot(result)
        elif isinstance(result, str):
            self.statusBar().showMessage(result, 5000)
            self._update_checkpoint_banner()
            self.refresh_status()

    def _on_failed(self, _job_id: int, message: str) -> None:
        self.show_error(message)
        self.refresh_status()
        self.action_failed.emit(message)

    def _on_busy(self, busy: bool) -> None:
        if busy and not self.busy_label.text():
            self.busy_label.setText("working...")
        elif not busy:
            self.busy_label.setText("")

    def _offer_recovery(self) -> None:
        """The image has autosaved unsaved work from a session that ended without saving: restore it?"""
        if not self.ask_to_save or self.snapshot.recovery is None:
            return
        answer = self.ask(
            "Restore unsaved work",
            f"{self.snapshot.image_path.name} has unsaved work autosaved in {self.snapshot.recovery}. "
            "Restore it?",
            QMessageBox.Yes | QMessageBox.No,
            QMessageBox.Yes,
        )
        if answer == QMessageBox.Yes:
            self._submit(self.controller.restore_recovery)
        else:
            self._submit(self.controller.discard_recovery)

    def show_snapshot(self, snap: Snapshot) -> None:
        """Draw a snapshot: slice, overlays, clicks, slider, status."""
        previous = self.snapshot
        self.snapshot = snap
        self._snapshot_at = time.perf_counter()
        if snap.raw is not None:
            new_image = previous.image_id != snap.image_id
            if new_image:
                self.busy_label.setText("")
                self._set_window(*snap.window)
                self.slice_slider.blockSignals(True)
                self.slice_slider.setRange(0, max(snap.depth - 1, 0))
                self.slice_slider.setValue(snap.slice_index)
                self.slice_slider.blockSignals(False)
                self.slice_row.setVisible(snap.depth > 1)
                self._presets = window_presets(snap.percentiles, snap.is_ct)
                self.preset_box.clear()
                self.preset_box.addItem("Window presets")
                self.preset_box.addItems(list(self._presets))
                self.setWindowTitle(f"WIML annotator - {snap.image_path.name}")
            self.slice_label.setText(f"slice {snap.slice_index} of 0-{snap.depth - 1} ")
            if new_image or previous.slice_index != snap.slice_index:
                self._render_image()
            self.canvas.set_overlays(snap.mask, snap.ground_truth, snap.cam, snap.clicks)
        if snap.depth > 1:
            self.slice_strip.set_data(snap.slice_status, snap.tags, snap.tag_probability, snap.slice_index)
        self.act_undo.setEnabled(snap.can_undo or snap.raw is None)
        self.act_redo.setEnabled(snap.can_redo)
        if snap.message:
            self.statusBar().showMessage(snap.message, 6000)
        if snap.recovery is not None and snap.image_id != previous.image_id:
            QTimer.singleShot(0, self._offer_recovery)
        if self._banner_is_error or snap.warning != previous.warning:
            self._update_checkpoint_banner()  # a successful action clears the last error; notes stay
        self.refresh_status()
        self.snapshot_shown.emit(snap)

    # ------------------------------------------------------------------ view state
    def _set_window(self, level: float, width: float) -> None:
        for box, value in ((self.level_box, level), (self.width_box, width)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        self._level, self._width = float(level), float(width)

    def _on_window_changed(self) -> None:
        self._level, self._width = self.level_box.value(), self.width_box.value()
        self._render_image()

    def _on_preset(self, index: int) -> None:
        if index > 0:
            level, width = self._presets[self.preset_box.itemText(index)]
            self._set_window(level, width)
            self._render_image()
        self.preset_box.setCurrentIndex(0)

    def reset_window(self) -> None:
        """Back to the image's default window (level, width)."""
        if self.snapshot.raw is not None:
            self._set_window(*self.snapshot.window)
            self._render_image()

    def _render_image(self) -> None:
        if self.snapshot.raw is not None:
            self.canvas.set_image(window_to_uint8(self.snapshot.raw, self._level, self._width))

    def _on_slice_slider(self, value: int) -> None:
        self.slice_label.setText(f"slice {value} of 0-{self.snapshot.depth - 1} ")
        self._slice_timer.start()

    def _on_hover(self, row: int, col: int) -> None:
        raw = self.snapshot.raw
        if raw is None or row < 0:
            self.pixel_label.setText("")
            return
        unit = " HU" if self.snapshot.is_ct else ""
        self.pixel_label.setText(f"({row}, {col}) = {raw[row, col]:.0f}{unit}")

    def refresh_status(self) -> None:
        """Update the permanent status-bar fields (clicks, time, Dice/IoU, checkpoint) from the snapshot."""
        snap = self.snapshot
        n_fg = sum(1 for c in snap.clicks if c.label)
        self.clicks_label.setText(f"clicks: {len(snap.clicks)} ({n_fg} fg, {len(snap.clicks) - n_fg} bg)")
        elapsed = snap.elapsed_s + time.perf_counter() - self._snapshot_at
        self.time_label.setText(f"time: {elapsed:.1f} s" if snap.raw is not None else "time: -")
        if snap.dice is not None:
            source = f" ({snap.proposal} proposal)" if snap.proposal and not snap.clicks else ""
            self.metrics_label.setText(f"Dice {snap.dice:.3f}  IoU {snap.iou:.3f}{source}")
        elif snap.raw is not None and snap.ground_truth is None:
            self.metrics_label.setText("no ground truth")
        else:
            self.metrics_label.setText("")
        if self.controller.model is not None:
            self.checkpoint_label.setText(f"CAM: {self.controller.checkpoint_path.name}")
        else:
            self.checkpoint_label.setText("CAM: none (clicks only)")

    def _update_checkpoint_banner(self) -> None:
        self._banner_is_error = False
        if self.controller.model is None:
            self._show_banner(self.controller.checkpoint_status, "#fff3cd", "#664d03")
        elif self.snapshot.warning:
            self._show_banner(self.snapshot.warning, "#fff3cd", "#664d03")
        else:
            self.banner.setVisible(False)
            self.statusBar().showMessage(self.controller.checkpoint_status, 5000)

    def _show_banner(self, text: str, background: str, colour: str) -> None:
        self.banner.setText(text)
        self.banner.setStyleSheet(
            f"QLabel {{ background: {background}; color: {colour}; padding: 6px; border-radius: 3px; }}"
        )
        self.banner.setVisible(True)

    def show_error(self, message: str) -> None:
        logger.warning("%s", message)
        self._show_banner(message, "#f8d7da", "#58151c")
        self._banner_is_error = True
        self.statusBar().showMessage(message, 8000)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        if not self._confirm_discard():
            event.ignore()
            return
        self._clock_timer.stop()
        self.worker.shutdown()
        self.controller.close()
        event.accept()
