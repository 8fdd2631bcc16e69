"""The image canvas: a slice with mask, ground-truth and CAM overlays, clicks, zoom and pan.

Left click = foreground, right click = background (signal ``clicked(row, col, foreground)``). Ctrl + wheel
zooms around the cursor, the wheel alone is reported (``slice_wheel``: the window changes slice); the middle
button, or Ctrl + left button, drags to pan. Scene coordinates are pixels:
pixel (row, col) covers [col, col + 1) x [row, row + 1).
"""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt5.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPen, QPixmap
from PyQt5.QtWidgets import QGraphicsEllipseItem, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from wiml.annotator.overlay import cam_rgba, mask_contours, mask_rgba
from wiml.colors import BG_CLICK_RGB, FG_CLICK_RGB, MASK_RGB
from wiml.colors import REFERENCE_RGB as GT_RGB

#: zoom limits, screen px per image px.
MIN_SCALE, MAX_SCALE = 0.05, 64.0
#: radius of a click marker on screen, px (independent of the zoom).
CLICK_MARKER_PX = 4.5


def gray_to_qimage(gray: np.ndarray) -> QImage:
    """(H, W) uint8 -> QImage (the array is copied, so it may be freed afterwards)."""
    gray = np.ascontiguousarray(gray, np.uint8)
    h, w = gray.shape
    return QImage(gray.data, w, h, w, QImage.Format_Grayscale8).copy()


def rgba_to_qimage(rgba: np.ndarray) -> QImage:
    """(H, W, 4) uint8 RGBA -> QImage (copied)."""
    rgba = np.ascontiguousarray(rgba, np.uint8)
    h, w = rgba.shape[:2]
    return QImage(rgba.data, w, h, 4 * w, QImage.Format_RGBA8888).copy()


def contour_path(mask: np.ndarray) -> QPainterPath:
    """Outline of a binary mask as a QPainterPath in scene (pixel) coordinates."""
    path = QPainterPath()
    for xy in mask_contours(mask):
        path.moveTo(QPointF(float(xy[0, 0]), float(xy[0, 1])))
        for x, y in xy[1:]:
            path.lineTo(QPointF(float(x), float(y)))
        path.closeSubpath()
    return path


def _cosmetic_pen(rgb: tuple[int, int, int], width: float, style=Qt.SolidLine) -> QPen:
    pen = QPen(QColor(*rgb), width, style)
    pen.setCosmetic(True)  # width in screen pixels at any zoom
    return pen


class ImageCanvas(QGraphicsView):
    """Zoomable, pannable slice view with overlays.

    Signals:
        clicked(int row, int col, bool foreground): a left (True) or right (False) click on the image.
        hovered(int row, int col): the cursor is over pixel (row, col) (-1, -1 when outside the image).
        zoom_changed(float): the new scale (screen px per image px).
        slice_wheel(int): the wheel turned (without Ctrl) by this many notches, up positive; the window moves
            through a volume's slices (or zooms a 2-D image).
        stroke(list, bool): a brush stroke ended: [(row, col), ...] pixels in order, and whether it erases
            (the eraser mode, or the right button in brush mode).
        window_drag(int, int): Shift + left drag moved by (dx, dy) screen px (window width, level).
        box_drawn(int, int, int, int): in ``box`` mode a drag ended: (row0, col0, row1, col1) px.

    Modes (``mode``): ``click`` (left/right = foreground/background click), ``brush`` and ``erase`` (drag to
    paint / erase disks of ``brush_radius_px``), ``box`` (drag a box around the target: a box proposal).
    """

    clicked = pyqtSignal(int, int, bool)
    hovered = pyqtSignal(int, int)
    slice_wheel = pyqtSignal(int)
    stroke = pyqtSignal(object, bool)
    box_drawn = pyqtSignal(int, int, int, int)
    window_drag = pyqtSignal(int, int)
    zoom_changed = pyqtSignal(float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.Antialiasing, True)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setBackgroundBrush(QBrush(QColor(20, 20, 20)))
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMinimumSize(320, 320)
        self._image_item = QGraphicsPixmapItem()
        self._image_item.setTransformationMode(Qt.FastTransformation)  # show pixels, not blur, when zoomed
        self._cam_item = QGraphicsPixmapItem()
        self._fill_item = QGraphicsPixmapItem()
        self._mask_path = self.scene().addPath(QPainterPath(), _cosmetic_pen(MASK_RGB, 2.0))
        self._gt_path = self.scene().addPath(QPainterPath(), _cosmetic_pen(GT_RGB, 2.0))
        for z, item in enumerate([self._image_item, self._cam_item, self._fill_item]):
            item.setZValue(z)
            self.scene().addItem(item)
        self._gt_path.setZValue(3)
        self._mask_path.setZValue(4)
        self._click_items: list[QGraphicsEllipseItem] = []
        self._shape: tuple[int, int] | None = None
        self._pan_from: QPointF | None = None
        self._press_pos = None
        self.opacity = 0.3
        self.show_mask = True
        self.show_gt = True
        self.show_cam = False
        self._mask = self._gt = self._cam = None
        self.mode = "click"
        self.brush_radius_px = 3
        self._stroke: list[tuple[int, int]] | None = None
        self._stroke_erase = False
        self._stroke_item = self.scene().addPath(QPainterPath(), QPen(QColor(255, 255, 255, 120), 1.0))
        self._stroke_item.setZValue(6)
        self._window_from: QPointF | None = None
        self._box_from: tuple[int, int] | None = None
        self._box_item = self.scene().addRect(QRectF(), _cosmetic_pen((255, 255, 255), 1.5, Qt.DashLine))
        self._box_item.setZValue(6)
        self._drawn: dict[str, tuple[bool, np.ndarray | None]] = {}

    # ------------------------------------------------------------------ content
    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(H, W) of the shown slice, or None."""
        return self._shape

    def set_image(self, gray: np.ndarray) -> None:
        """Show an (H, W) uint8 slice; a new size resets the view to fit the window."""
        new_shape = tuple(gray.shape)
        self._image_item.setPixmap(QPixmap.fromImage(gray_to_qimage(gray)))
        if new_shape != self._shape:
            self._shape = new_shape
            self.scene().setSceneRect(QRectF(0, 0, new_shape[1], new_shape[0]))
            self.fit()

    def set_overlays(
        self, mask: np.ndarray | None, ground_truth: np.ndarray | None, cam: np.ndarray | None, clicks=()
    ) -> None:
        """Draw the current mask (green fill + contour), the ground truth (blue contour), the CAM and clicks."""
        self._mask, self._gt, self._cam = mask, ground_truth, cam
        self._refresh_overlays()
        for item in self._click_items:
            self.scene().removeItem(item)
        self._click_items = []
        r = CLICK_MARKER_PX
        for click in clicks:
            rgb = FG_CLICK_RGB if click.label else BG_CLICK_RGB
            # a marker of constant screen size centred on the clicked pixel, visible at any zoom
            item = QGraphicsEllipseItem(-r, -r, 2 * r, 2 * r)
            item.setPos(click.col + 0.5, click.row + 0.5)
            item.setFlag(QGraphicsEllipseItem.ItemIgnoresTransformations, True)
            item.setBrush(QBrush(QColor(*rgb)))
            item.setPen(_cosmetic_pen((0, 0, 0), 1.0))
            item.setZValue(5)
            self.scene().addItem(item)
            self._click_items.append(item)

    def _changed(self, layer: str, array: np.ndarray | None, visible: bool) -> bool:
        """Whether a layer must be redrawn (its visibility or content differs from what is drawn)."""
        drawn = self._drawn.get(layer)
        if drawn is not None and drawn[0] == visible:
            old = drawn[1]
            if old is array or (
                old is not None
                and array is not None
                and old.shape == array.shape
                and np.array_equal(old, array)
            ):
                return False
        self._drawn[layer] = (visible, array)
        return True

    def _refresh_overlays(self) -> None:
        # each layer is rebuilt only when it changed: a click redraws the mask, not the ground truth or the CAM
        show_mask = self.show_mask and self._mask is not None
        if self._changed("mask", self._mask, show_mask):
            self._mask_path.setPath(contour_path(self._mask) if show_mask else QPainterPath())
            if show_mask:
                self._fill_item.setPixmap(QPixmap.fromImage(rgba_to_qimage(mask_rgba(self._mask, MASK_RGB))))
            self._fill_item.setVisible(show_mask)
        show_gt = self.show_gt and self._gt is not None
        if self._changed("gt", self._gt, show_gt):
            self._gt_path.setPath(contour_path(self._gt) if show_gt else QPainterPath())
        show_cam = self.show_cam and self._cam is not None
        if self._changed("cam", self._cam, show_cam):
            if show_cam:
                self._cam_item.setPixmap(QPixmap.fromImage(rgba_to_qimage(cam_rgba(self._cam))))
            self._cam_item.setVisible(show_cam)
        self._fill_item.setOpacity(self.opacity)
        self._cam_item.setOpacity(max(self.opacity, 0.35))

    def set_opacity(self, opacity: float) -> None:
        """Opacity of the mask fill and the CAM, in [0, 1]."""
        self.opacity = float(np.clip(opacity, 0.0, 1.0))
        self._fill_item.setOpacity(self.opacity)
        self._cam_item.setOpacity(max(self.opacity, 0.35))

    def set_visibility(
        self, mask: bool | None = None, gt: bool | None = None, cam: bool | None = None
    ) -> None:
        """Show or hide the mask, the ground truth or the CAM."""
        if mask is not None:
            self.show_mask = mask
        if gt is not None:
            self.show_gt = gt
        if cam is not None:
            self.show_cam = cam
        self._refresh_overlays()

    # ------------------------------------------------------------------ zoom and pan
    @property
    def scale_factor(self) -> float:
        return float(self.transform().m11())

    def fit(self) -> None:
        """Fit the whole slice into the view."""
        if self._shape is not None:
            self.fitInView(self.scene().sceneRect(), Qt.KeepAspectRatio)
            self.zoom_changed.emit(self.scale_factor)

    def zoom(self, factor: float) -> None:
        """Multiply the scale by ``factor`` (clamped to [MIN_SCALE, MAX_SCALE] screen px per image px)."""
        current = self.scale_factor
        new = float(np.clip(current * factor, MIN_SCALE, MAX_SCALE))
        if new != current:
            self.scale(new / current, new / current)
            self.zoom_changed.emit(self.scale_factor)

    def pan(self, dx: int, dy: int) -> None:
        """Scroll the view by (dx, dy) screen pixels."""
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + int(dx))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + int(dy))

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt naming
        steps = event.angleDelta().y() / 120.0
        if steps and event.modifiers() & Qt.ControlModifier:
            self.zoom(1.25**steps)
        elif steps:
            self._wheel_rest = getattr(self, "_wheel_rest", 0.0) + steps
            whole = int(self._wheel_rest)
            if whole:
                self._wheel_rest -= whole
                self.slice_wheel.emit(whole)
        event.accept()

    def pixel_at(self, view_pos) -> tuple[int, int] | None:
        """(row, col) of the image pixel under a view position, or None outside the image."""
        if self._shape is None:
            return None
        p = self.mapToScene(view_pos)
        row, col = int(np.floor(p.y())), int(np.floor(p.x()))
        if 0 <= row < self._shape[0] and 0 <= col < self._shape[1]:
            return row, col
        return None

    def _update_stroke_item(self) -> None:
        path = QPainterPath()
        if self._stroke:
            path.moveTo(QPointF(self._stroke[0][1] + 0.5, self._stroke[0][0] + 0.5))
            for r, c in self._stroke[1:]:
                path.lineTo(QPointF(c + 0.5, r + 0.5))
        pen = QPen(QColor(255, 80, 80, 140) if self._stroke_erase else QColor(80, 255, 120, 140))
        pen.setWidthF(2.0 * self.brush_radius_px + 1.0)
        pen.setCapStyle(Qt.RoundCap)
        pen.setJoinStyle(Qt.RoundJoin)
        self._stroke_item.setPen(pen)
        self._stroke_item.setPath(path)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.LeftButton and event.modifiers() & Qt.ShiftModifier:
            self._window_from = event.pos()
            event.accept()
            return
        if self.mode == "box" and event.button() == Qt.LeftButton:
            self._box_from = self.pixel_at(event.pos())
            event.accept()
            return
        if self.mode in ("brush", "erase") and event.button() in (Qt.LeftButton, Qt.RightButton):
            pix = self.pixel_at(event.pos())
            self._stroke = [pix] if pix is not None else []
            self._stroke_erase = self.mode == "erase" or event.button() == Qt.RightButton
            self._update_stroke_item()
            event.accept()
            return
        pan = event.button() == Qt.MiddleButton or (
            event.button() == Qt.LeftButton and event.modifiers() & Qt.ControlModifier
        )
        if pan:
            self._pan_from = event.pos()
            self.setCursor(Qt.ClosedHandCursor)
            event.accept()
            return
        if event.button() in (Qt.LeftButton, Qt.RightButton):
            self._press_pos = event.pos()
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._window_from is not None:
            delta = event.pos() - self._window_from
            self._window_from = event.pos()
            self.window_drag.emit(delta.x(), delta.y())
            event.accept()
            return
        if self._box_from is not None:
            pix = self.pixel_at(event.pos())
            if pix is not None:
                r0, c0 = self._box_from
                self._box_item.setRect(
                    QRectF(min(c0, pix[1]), min(r0, pix[0]), abs(pix[1] - c0) + 1, abs(pix[0] - r0) + 1)
                )
            event.accept()
            return
        if self._stroke is not None:
            pix = self.pixel_at(event.pos())
            if pix is not None and (not self._stroke or self._stroke[-1] != pix):
                self._stroke.append(pix)
                self._update_stroke_item()
            event.accept()
            return
        if self._pan_from is not None:
            delta = event.pos() - self._pan_from
            self._pan_from = event.pos()
            self.pan(-delta.x(), -delta.y())
            event.accept()
            return
        pix = self.pixel_at(event.pos())
        self.hovered.emit(*(pix if pix is not None else (-1, -1)))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._window_from is not None:
            self._window_from = None
            event.accept()
            return
        if self._box_from is not None:
            start, self._box_from = self._box_from, None
            self._box_item.setRect(QRectF())
            end = self.pixel_at(event.pos())
            if end is not None:
                self.box_drawn.emit(start[0], start[1], end[0], end[1])
            event.accept()
            return
        if self._stroke is not None:
            stroke, self._stroke = self._stroke, None
            self._update_stroke_item()
            if stroke:
                self.stroke.emit(stroke, self._stroke_erase)
            event.accept()
            return
        if self._pan_from is not None:
            self._pan_from = None
            self.unsetCursor()
            event.accept()
            return
        if self._press_pos is not None and event.button() in (Qt.LeftButton, Qt.RightButton):
            moved = (event.pos() - self._press_pos).manhattanLength()
            self._press_pos = None
            pix = self.pixel_at(event.pos())
            if pix is not None and moved <= 4:  # a click, not an accidental drag
                self.clicked.emit(pix[0], pix[1], event.button() == Qt.LeftButton)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def contextMenuEvent(self, event) -> None:  # noqa: N802 - right button is a background click, no menu
        event.accept()
