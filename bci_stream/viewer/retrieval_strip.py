"""The viewer's row of retrieved images: an embedding model's top-k gallery thumbnails, each with its
label, image id and cosine similarity, nearest first (the top-1 framed green on a hit, red on a miss
in event mode)."""

from __future__ import annotations

import numpy as np
from PyQt6 import QtCore, QtGui, QtWidgets

THUMB_PX = 72  # side of a shown thumbnail


def thumbnail_pixmap(image: np.ndarray, side: int = THUMB_PX) -> QtGui.QPixmap:
    """A ``(h, w, 3)`` uint8 thumbnail as a ``side``-pixel pixmap."""
    img = np.ascontiguousarray(image)
    h, w, _ = img.shape
    qimage = QtGui.QImage(img.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()
    return QtGui.QPixmap.fromImage(qimage).scaled(side, side, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                                                  QtCore.Qt.TransformationMode.SmoothTransformation)


class RetrievalStrip(QtWidgets.QGroupBox):
    """Top-k thumbnails of a :class:`bci_stream.retrieval.index.GalleryIndex`; :meth:`show_retrieval` takes the
    shared state's ``retrieval`` entry (rows, ids, labels, similarities)."""

    def __init__(self, gallery, title: str = "nearest gallery images (cosine similarity)"):
        super().__init__(title)
        self.gallery = gallery
        self.row = QtWidgets.QHBoxLayout(self)
        self.row.setContentsMargins(4, 4, 4, 4)
        self.slots: list[tuple[QtWidgets.QLabel, QtWidgets.QLabel]] = []
        self._shown_rows: list[int] = []
        self._shown_hit: bool | None = None

    def _slot(self, k: int) -> tuple[QtWidgets.QLabel, QtWidgets.QLabel]:
        while len(self.slots) <= k:
            column = QtWidgets.QVBoxLayout()
            picture, caption = QtWidgets.QLabel(), QtWidgets.QLabel()
            picture.setFixedSize(THUMB_PX + 6, THUMB_PX + 6)
            picture.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            caption.setAlignment(QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignTop)
            caption.setWordWrap(True)
            caption.setFixedWidth(THUMB_PX + 12)
            font = caption.font()
            font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
            caption.setFont(font)
            column.addWidget(picture)
            column.addWidget(caption)
            column.addStretch(1)
            self.row.addLayout(column)
            self.slots.append((picture, caption))
        return self.slots[k]

    def show_retrieval(self, retrieval: dict | None, hit: bool | None = None) -> None:
        """Show the decision's nearest images (only when they, or the hit, changed: pixmaps are not free)."""
        if not retrieval:
            return
        rows = [int(r) for r in retrieval["rows"]]
        for k, (similarity, label, image_id) in enumerate(zip(retrieval["similarities"], retrieval["labels"],
                                                              retrieval["ids"])):
            self._slot(k)[1].setText(f"{label or image_id}\n{image_id}\n{similarity:+.2f}")
        if rows == self._shown_rows and hit == self._shown_hit:
            return
        self._shown_rows, self._shown_hit = rows, hit
        for k, row in enumerate(rows):
            picture, _ = self._slot(k)
            thumbs = self.gallery.thumbnails if self.gallery is not None else None
            if thumbs is not None:
                picture.setPixmap(thumbnail_pixmap(thumbs[row]))
            else:
                picture.setText("(no thumbnail)")
            colour = "#40c040" if (k == 0 and hit) else "#d04040" if (k == 0 and hit is False) else "#505050"
            picture.setStyleSheet(f"border: 3px solid {colour};")
        for picture, caption in self.slots[len(rows):]:
            picture.clear()
            caption.clear()
