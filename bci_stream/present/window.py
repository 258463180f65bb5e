"""The stimulus window (PyQt6): shows a :func:`~bci_stream.present.schedule.build_schedule` and pushes
each picture's image id on an LSL marker stream, stamped when its frame was flipped.

Timing. Each screen change is painted with a synchronous ``QWidget.repaint()``: it returns when the
frame is in the window system's hands (the backing store flushed); the marker is stamped with
``pylsl.local_clock()`` right then and pushed with that stamp. What a QWidget cannot see is the
display's vsync: on a real monitor the photons follow at the next refresh (up to one frame later,
plus the panel's own lag). The optional photodiode patch (a white square in the bottom-left corner
while a picture is shown, black otherwise) lets a lab measure that on its own screen.
``tools/bench_present.py`` measures what can be measured here: repaint time, onset error against the
schedule, and marker stamp versus flip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pylsl
from PyQt6 import QtCore, QtGui, QtWidgets

from bci_stream.present.schedule import Event

BACKGROUND = QtGui.QColor(128, 128, 128)
PHOTODIODE_PX = 60


def marker_outlet(name: str, source_id: str) -> pylsl.StreamOutlet:
    """The presenter's string marker stream (type Markers, irregular rate), as PsychoPy's."""
    info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, source_id)
    info.desc().append_child_value("manufacturer", "bci-stream present")
    return pylsl.StreamOutlet(info)


@dataclass
class Flip:
    """One screen change: its event, the LSL time it was scheduled for, when the repaint started and
    returned (the marker's stamp), LSL seconds."""

    event: Event
    scheduled: float
    paint_start: float
    stamp: float


@dataclass
class PresenterLog:
    flips: list[Flip] = field(default_factory=list)

    @property
    def stimuli(self) -> list[Flip]:
        return [f for f in self.flips if f.event.kind == "stimulus"]


class PresenterWindow(QtWidgets.QWidget):
    """Runs ``events`` from :meth:`start`; ``finished`` is emitted after the "end" event."""

    finished = QtCore.pyqtSignal()

    def __init__(self, events: list[Event], outlet: pylsl.StreamOutlet | None, photodiode: bool = False,
                 image_px: int = 400):
        super().__init__()
        self.setWindowTitle("bci-stream present")
        self.events, self.outlet, self.photodiode = events, outlet, photodiode
        self.log = PresenterLog()
        self._pixmaps: dict = {}
        for ev in events:  # decoded and scaled before the session: no file I/O at a flip
            if ev.stimulus is not None and ev.stimulus.path not in self._pixmaps:
                pm = QtGui.QPixmap(str(ev.stimulus.path))
                if pm.isNull():
                    raise ValueError(f"cannot read image {ev.stimulus.path}; convert it to JPEG or PNG")
                self._pixmaps[ev.stimulus.path] = pm.scaled(image_px, image_px,
                                                            QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                                                            QtCore.Qt.TransformationMode.SmoothTransformation)
        self._current: Event | None = None
        self._i = 0
        self._t0 = 0.0
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._next)
        self.setAutoFillBackground(False)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def start(self) -> None:
        self._t0 = pylsl.local_clock()
        self._i = 0
        self._schedule()

    def _schedule(self) -> None:
        if self._i >= len(self.events):
            return
        due = self._t0 + self.events[self._i].t
        self._timer.start(max(0, int((due - pylsl.local_clock()) * 1000)))

    def _next(self) -> None:
        ev = self.events[self._i]
        due = self._t0 + ev.t
        while pylsl.local_clock() < due - 0.0002:  # the timer has ms resolution: finish the wait precisely
            time.sleep(0.0001)
        self._current = ev
        start = pylsl.local_clock()
        self.repaint()  # synchronous: painted and flushed when it returns
        stamp = pylsl.local_clock()
        if ev.kind == "stimulus" and self.outlet is not None:
            self.outlet.push_sample([ev.stimulus.image_id], stamp)
        self.log.flips.append(Flip(ev, due, start, stamp))
        self._i += 1
        if ev.kind == "end":
            self.finished.emit()
        else:
            self._schedule()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        ev = self._current
        centre = self.rect().center()
        if ev is not None and ev.kind == "stimulus":
            pm = self._pixmaps[ev.stimulus.path]
            p.drawPixmap(centre.x() - pm.width() // 2, centre.y() - pm.height() // 2, pm)
        elif ev is not None and ev.kind == "fixation":
            p.setPen(QtGui.QPen(QtGui.QColor("black"), 4))
            p.drawLine(centre.x() - 15, centre.y(), centre.x() + 15, centre.y())
            p.drawLine(centre.x(), centre.y() - 15, centre.x(), centre.y() + 15)
        elif ev is not None and ev.kind == "break":
            p.setPen(QtGui.QColor("black"))
            p.drawText(self.rect(), QtCore.Qt.AlignmentFlag.AlignCenter, "Break: the next block starts soon")
        if self.photodiode:
            on = ev is not None and ev.kind == "stimulus"
            p.fillRect(0, self.height() - PHOTODIODE_PX, PHOTODIODE_PX, PHOTODIODE_PX,
                       QtGui.QColor("white" if on else "black"))
        p.end()


def run_presenter(events: list[Event], outlet: pylsl.StreamOutlet | None, fullscreen: bool = False,
                  photodiode: bool = False, size: tuple[int, int] = (800, 600)) -> PresenterLog:
    """Show ``events`` in a window (full screen or ``size``) until the end; returns the flip log."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])  # held: a Qt app must outlive its windows
    win = PresenterWindow(events, outlet, photodiode=photodiode)
    win.resize(*size)
    win.showFullScreen() if fullscreen else win.show()
    # a local event loop, not app.exec()/app.quit(): the presenter must not quit an application it does
    # not own (the viewer's, or a test session's, whose later windows then stopped painting)
    loop = QtCore.QEventLoop()
    win.finished.connect(loop.quit)
    QtCore.QTimer.singleShot(0, win.start)
    loop.exec()
    win.close()
    log = win.log
    win.deleteLater()
    app.processEvents()  # the window is gone before the caller goes on
    return log
