"""The live viewer window.

Traces (decimated, a selectable channel subset, markers as lines), the current spectrogram, top-5
bars, the rendered picture with its class and age, and a status line. A QTimer (~30 fps) copies
what it needs from :class:`bci_stream.state.SharedState` and the ring buffer; decoding and rendering
run on their own threads and never wait for the GUI.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import numpy as np
import pylsl
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from bci_stream.state import SharedState
from bci_stream.viewer.protocol import TRACE_POINTS, TRACE_SECONDS


def channel_groups(ch_names: list[str]) -> dict[str, list[int]]:
    """Selectable channel subsets: occipito-parietal, a 10-20 subset, every k-th, first 16."""
    occ = [i for i, n in enumerate(ch_names) if n.upper().startswith(("O", "PO", "I"))][:16]
    classic = {"FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T7", "T8", "P7", "P8", "FZ", "CZ", "PZ", "OZ"}
    ten20 = [i for i, n in enumerate(ch_names) if n.upper() in classic]
    step = max(1, len(ch_names) // 16)
    groups = {"occipital/parietal": occ, "10-20": ten20, f"every {step}th": list(range(0, len(ch_names), step))[:16],
              "first 16": list(range(min(16, len(ch_names))))}
    return {k: v for k, v in groups.items() if v}


class _TimedLabel(QtWidgets.QLabel):
    """A label that calls ``on_painted()`` after each paint (the picture is then on screen, or in
    the offscreen backing store)."""

    def __init__(self, text: str, on_painted):
        super().__init__(text)
        self.on_painted = on_painted

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().paintEvent(event)
        self.on_painted()


class MainWindow(QtWidgets.QMainWindow):
    """Viewer of a live session: ``state`` and ``ring`` are a :class:`~bci_stream.viewer.decoding_process.DecodingProcess`'s mirrors (or a
    :class:`~bci_stream.live.LiveSession`'s own, or bare ones in tests); ``session`` takes the
    recording and stop commands."""

    def __init__(self, state: SharedState, ch_names: list[str], sfreq: float, ring=None, session=None,
                 renderer_factory=None, fps: float = 30.0, class_ids: list[str] | None = None):
        super().__init__()
        self.class_ids = list(class_ids or (session.card.class_ids if session is not None else []))
        self.state, self.ring, self.session, self.sfreq = state, ring, session, sfreq
        self.ch_names = ch_names
        self.renderer_factory = renderer_factory
        self.setWindowTitle("bci-stream — live EEG visual decoder")
        self.resize(1280, 800)
        pg.setConfigOptions(antialias=False, imageAxisOrder="row-major")

        central = QtWidgets.QWidget()
        self.setCentralWidget(central)
        grid = QtWidgets.QGridLayout(central)

        # controls
        bar = QtWidgets.QHBoxLayout()
        self.group_box = QtWidgets.QComboBox()
        self.groups = channel_groups(ch_names)
        self.group_box.addItems(list(self.groups))
        self.group_box.currentTextChanged.connect(self._select_group)
        self.renderer_box = QtWidgets.QComboBox()
        self.renderer_box.addItems(["gallery", "diffusion", "none"])
        self.renderer_box.setCurrentText(state.renderer_kind.split(" ")[0] if state.renderer_kind else "none")
        self.renderer_box.textActivated.connect(self._pick_renderer)
        self.record_button = QtWidgets.QPushButton("Start recording log")
        self.record_button.setCheckable(True)
        self.record_button.toggled.connect(self._toggle_recording)
        self.shot_button = QtWidgets.QPushButton("Save screenshot")
        self.shot_button.clicked.connect(lambda: self.save_screenshot())
        for label, widget in (("Channels:", self.group_box), ("Renderer:", self.renderer_box)):
            bar.addWidget(QtWidgets.QLabel(label))
            bar.addWidget(widget)
        bar.addStretch(1)
        bar.addWidget(self.record_button)
        bar.addWidget(self.shot_button)
        grid.addLayout(bar, 0, 0, 1, 2)

        # traces
        self.traces = pg.PlotWidget(title="EEG (µV, offset per channel)")
        self.traces.setLabel("bottom", "time", units="s")
        self.traces.showGrid(x=True, y=False, alpha=0.2)
        self.traces.setXRange(-TRACE_SECONDS, 0)
        self.curves: list[pg.PlotDataItem] = []
        self.marker_lines: list[pg.InfiniteLine] = []
        self._marker_items: dict[tuple[float, str], pg.InfiniteLine] = {}
        grid.addWidget(self.traces, 1, 0)

        # spectrogram
        self.spec_plot = pg.PlotWidget(title="spectrogram of the last window (mean over channels, normalised)")
        self.spec_image = pg.ImageItem()
        self.spec_image.setColorMap(pg.colormap.get("viridis"))
        self.spec_plot.addItem(self.spec_image)
        self.spec_plot.setLabel("bottom", "frame")
        self.spec_plot.setLabel("left", "frequency bin")
        grid.addWidget(self.spec_plot, 2, 0)

        # top-5 bars
        self.bars_plot = pg.PlotWidget(title="top-5 class probabilities")
        self.bars_plot.setXRange(0, 1)
        self.bars_plot.getViewBox().invertY(True)
        self.bars = pg.BarGraphItem(x0=np.zeros(5), y=np.arange(5), height=0.7, width=np.zeros(5), brush="#3b8bd9")
        self.bars_plot.addItem(self.bars)
        grid.addWidget(self.bars_plot, 1, 1)

        # rendered image
        panel = QtWidgets.QWidget()
        col = QtWidgets.QVBoxLayout(panel)
        self.image_label = _TimedLabel("no picture yet", self._image_painted)
        self.painted: deque = deque(maxlen=1000)  # (RenderedImage, LSL time its first paint ended)
        self._unpainted = None  # a picture set on the label and not yet painted
        self.image_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.image_label.setMinimumSize(320, 320)
        self.image_caption = QtWidgets.QLabel("")
        self.image_caption.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        col.addWidget(self.image_label, 1)
        col.addWidget(self.image_caption)
        grid.addWidget(panel, 2, 1)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)

        self.status = QtWidgets.QLabel("")
        self.statusBar().addWidget(self.status, 1)
        self._select_group(self.group_box.currentText())
        self._shown_image = None
        self._shown_top5: list[int] = []
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(int(1000 / fps))

    # --- controls --------------------------------------------------------------------------------
    def _select_group(self, name: str) -> None:
        self.channels = np.asarray(self.groups.get(name, []), dtype=int)
        for curve in self.curves:
            self.traces.removeItem(curve)
        self.curves = [self.traces.plot(pen=pg.mkPen(pg.intColor(i, hues=12), width=1)) for i in range(len(self.channels))]
        ticks = [(-k * 50.0, self.ch_names[c]) for k, c in enumerate(self.channels)]
        self.traces.getAxis("left").setTicks([ticks])
        if hasattr(self.ring, "select"):  # traces from a decoding process: tell it what to send
            self.ring.select(self.channels)

    def _pick_renderer(self, kind: str) -> None:
        if self.renderer_factory is not None:
            self.renderer_factory(kind)

    def _toggle_recording(self, on: bool) -> None:
        if self.session is None:
            return
        if on:
            path = Path(f"bci-stream-{time.strftime('%Y%m%d-%H%M%S')}.jsonl").resolve()
            self.session.set_recording(path)
            self.record_button.setText(f"Stop recording ({path.name})")
        else:
            self.session.set_recording(None)
            self.record_button.setText("Start recording log")

    def save_screenshot(self, path: str | Path | None = None) -> Path:
        path = Path(path or f"bci-stream-{time.strftime('%Y%m%d-%H%M%S')}.png")
        self.grab().save(str(path))
        self.state.update(message=f"saved {path}")
        return path

    # --- the 30 fps refresh --------------------------------------------------------------------
    def refresh(self) -> None:
        snap = self.state.snapshot()
        self._refresh_traces(snap)
        self._refresh_spectrogram(snap)
        self._refresh_bars(snap)
        self._refresh_image(snap)
        self._refresh_status(snap)

    def _refresh_traces(self, snap: dict) -> None:
        if self.ring is None or len(self.channels) == 0:
            return
        n = int(TRACE_SECONDS * self.sfreq)
        step = max(1, n // TRACE_POINTS)
        data, t_last = self.ring.snapshot(n, self.channels, step)
        if t_last is None or data.shape[1] < 2 or data.shape[0] != len(self.curves):
            return
        t = (np.arange(data.shape[1]) - data.shape[1] + 1) * step / self.sfreq
        data = data - data.mean(axis=1, keepdims=True)
        for k, curve in enumerate(self.curves):
            curve.setData(t, data[k] - 50.0 * k)
        visible = [(t, text) for t, text in snap["markers"][-20:] if -TRACE_SECONDS <= t - t_last <= 0]
        for key in [key for key in self._marker_items if key not in visible]:
            self.traces.removeItem(self._marker_items.pop(key))
        for t_marker, text in visible:  # lines are made once per marker and only moved afterwards
            line = self._marker_items.get((t_marker, text))
            if line is None:
                line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#e0a030", width=1), label=self._marker_label(text),
                                       labelOpts={"position": 0.97 - 0.04 * (len(self._marker_items) % 3),
                                                  "color": "#e0a030"})
                self.traces.addItem(line)
                self._marker_items[(t_marker, text)] = line
            line.setValue(t_marker - t_last)
        self.marker_lines = [self._marker_items[key] for key in visible]

    def _marker_label(self, text: str) -> str:
        """Short label for a marker: the class name for an ImageNet image id, else the text."""
        synset = text.split("_")[0]
        if self.class_ids and synset in self.class_ids:
            return self.state.class_names[self.class_ids.index(synset)]
        return text[:16]

    def _refresh_spectrogram(self, snap: dict) -> None:
        feats = snap["features"]
        if feats is not None:  # (n_channels, n_freqs, n_frames), or its channel mean from a decoding process
            self.spec_image.setImage(feats.mean(axis=0) if feats.ndim == 3 else feats, autoLevels=True)

    def _refresh_bars(self, snap: dict) -> None:
        probs, top5, names = snap["probabilities"], snap["top5"], snap["class_names"]
        if probs is None or not top5:
            return
        self.bars.setOpts(width=np.array([probs[i] for i in top5]), y=np.arange(len(top5)))
        if top5 != self._shown_top5:  # new tick labels relayout the axis: only when the ranking changes
            self._shown_top5 = list(top5)
            self.bars_plot.getAxis("left").setTicks([[(k, names[i]) for k, i in enumerate(top5)]])

    def _refresh_image(self, snap: dict) -> None:
        rendered = snap["image"]
        if rendered is None:
            return
        if rendered is not self._shown_image:
            self._shown_image = rendered
            img = np.ascontiguousarray(rendered.image)
            h, w, _ = img.shape
            qimage = QtGui.QImage(img.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()
            pix = QtGui.QPixmap.fromImage(qimage)
            self.image_label.setPixmap(pix.scaled(self.image_label.size(), QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                                                  QtCore.Qt.TransformationMode.SmoothTransformation))
            self._unpainted = rendered
        age = pylsl.local_clock() - rendered.t_created
        self.image_caption.setText(f"{rendered.class_name}  ·  {rendered.kind}  ·  {rendered.seconds * 1000:.0f} ms "
                                   f"to render  ·  {age:.1f} s old")

    def _image_painted(self) -> None:
        """Note when a new picture's first paint has ended (stimulus → picture timing)."""
        if self._unpainted is not None:
            self.painted.append((self._unpainted, pylsl.local_clock()))
            self._unpainted = None

    def _refresh_status(self, snap: dict) -> None:
        parts = [f"stream: {snap['stream_name'] or '?'} ({snap['stream_status']})",
                 f"markers: {snap['marker_stream'] or '-'} ({snap['marker_status']})",
                 f"input z: mean {snap['ood_bias']:+.1f} rms {snap['ood_rms']:.1f}",
                 f"provider: {snap['provider'] or '?'}",
                 f"latency p50 {snap['latency_p50']:.2f} / p99 {snap['latency_p99']:.2f} ms",
                 f"decisions {snap['n_decisions']} (withheld {snap['n_withheld']})",
                 f"lost samples {snap['lost_samples']}", f"gaps {len(snap['gaps'])}",
                 f"renderer: {snap['renderer_kind']} {snap['renderer_fps']:.1f} fps"]
        if snap["ood_warning"]:
            parts.insert(0, f"⚠ {snap['ood_warning'][:140]}")
        if snap["renderer_error"]:
            parts.append(f"⚠ {snap['renderer_error'][:120]}")
        if snap.get("log_error"):
            parts.append(f"⚠ {snap['log_error'][:120]}")
        if snap["withheld_reason"]:
            parts.append(f"last withheld: {snap['withheld_reason'][:80]}")
        if snap["message"]:
            parts.append(snap["message"][:80])
        text = "   |   ".join(parts)
        if text != self.status.text():
            self.status.setText(text)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.timer.stop()
        if self.session is not None:
            self.session.stop()
        super().closeEvent(event)


def show_until_done(app, window: MainWindow, running, seconds: float | None, screenshot: str | None) -> None:
    """Show ``window`` until it is closed or ``running()`` turns False; a screenshot shortly before
    ``seconds`` (or at the end) when ``screenshot`` names a PNG."""
    saved = []

    def shoot():
        if screenshot and not saved:
            saved.append(window.save_screenshot(screenshot))

    def check_done():
        if not running():
            shoot()  # only if the timed one did not run yet
            window.close()

    done_timer = QtCore.QTimer()
    done_timer.timeout.connect(check_done)
    done_timer.start(200)
    if screenshot and seconds:
        QtCore.QTimer.singleShot(int(max(0.5, seconds - 1.0) * 1000), shoot)
    window.show()
    app.exec()
    done_timer.stop()
