"""The slice strip under a volume: one column per slice showing its state, its image tag and the weak model's
tag probability; a click moves to that slice."""

from __future__ import annotations

from PyQt5.QtCore import QRectF, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QPainter, QPen
from PyQt5.QtWidgets import QSizePolicy, QWidget

from wiml.annotator.controller import FINISHED, PROPOSED, UNSAVED, UNTOUCHED
from wiml.colors import MASK_RGB

#: column colours by slice status.
STATUS_COLOURS = {
    UNTOUCHED: QColor(60, 60, 60),
    FINISHED: QColor(*MASK_RGB),
    UNSAVED: QColor(255, 150, 30),
    PROPOSED: QColor(120, 170, 230),
}
#: tag band colours: present, absent.
TAG_COLOURS = {1: QColor(230, 60, 60), 0: QColor(200, 200, 200)}


class SliceStrip(QWidget):
    """A strip of D columns: lower band = slice status (grey untouched, green finished, orange unsaved, light
    blue proposed), upper band = image tag (red present, light grey absent, dark: not set), a white bar = the
    weak model's tag probability; the shown slice is framed.

    Signals:
        slice_clicked(int): the user clicked the column of a slice.
    """

    slice_clicked = pyqtSignal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(26)
        self.setMaximumHeight(30)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.status: tuple[int, ...] = ()
        self.tags: tuple[int, ...] = ()
        self.probability: tuple[float, ...] | None = None
        self.current = 0
        self.setToolTip(
            "slices: green finished, orange unsaved, blue proposed, grey untouched; top band: tag "
            "(red present, light grey absent); white bar: weak model's tag probability. Click to go there."
        )

    def set_data(
        self,
        status: tuple[int, ...],
        tags: tuple[int, ...],
        probability: tuple[float, ...] | None,
        current: int,
    ) -> None:
        """Show a volume's per-slice state (all tuples of length D) with slice ``current`` framed."""
        self.status, self.tags, self.probability, self.current = status, tags, probability, int(current)
        self.update()

    def _column_at(self, x: float) -> int | None:
        n = len(self.status)
        if n == 0 or self.width() <= 0:
            return None
        return int(min(max(x / self.width() * n, 0), n - 1))

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt naming
        index = self._column_at(event.pos().x())
        if index is not None and event.button() == Qt.LeftButton:
            self.slice_clicked.emit(index)
        event.accept()

    def paintEvent(self, event) -> None:  # noqa: N802
        n = len(self.status)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 30, 30))
        if n == 0:
            return
        w, h = self.width() / n, float(self.height())
        tag_h = h * 0.3
        for i, status in enumerate(self.status):
            x = i * w
            cw = w + 0.6  # columns overlap slightly: no hairline gaps from rounding
            painter.fillRect(QRectF(x, tag_h, cw, h - tag_h), STATUS_COLOURS.get(status))
            tag = self.tags[i] if i < len(self.tags) else -1
            if tag in TAG_COLOURS:
                painter.fillRect(QRectF(x, 0, cw, tag_h - 1), TAG_COLOURS[tag])
            if self.probability is not None and i < len(self.probability):
                bar = (h - tag_h) * float(self.probability[i])
                painter.fillRect(
                    QRectF(x + w * 0.3, h - bar, max(w * 0.4, 0.5), bar), QColor(255, 255, 255, 200)
                )
        pen = QPen(QColor(255, 255, 255), 2.0)
        painter.setPen(pen)
        painter.drawRect(QRectF(self.current * w, 1, max(w, 2.0), h - 2))
        painter.end()
