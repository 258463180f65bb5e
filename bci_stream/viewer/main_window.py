"""The live viewer window.

Traces (decimated, a selectable channel subset, markers as lines), the current spectrogram, top-5
bars, the rendered picture with its class and age, and a status line. A QTimer (~30 fps) copies
what it needs from :class:`bci_stream.live.state.SharedState` and the traces; a new picture is shown
as soon as it arrives (the state's ``picture_listeners`` emit :attr:`MainWindow.picture_ready`).
Decoding and rendering run in the decoding process (or on their own threads beside an in-process
session) and never wait for the GUI.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pylsl
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from bci_stream.contract.model_card import ModelCard
from bci_stream.live.interfaces import TracesSource, ViewerSession
from bci_stream.live.ring_buffer import RingBuffer
from bci_stream.live.scoring import accuracy_text as scoring_text
from bci_stream.live.state import SharedState
from bci_stream.render.base import RENDER_KINDS
from bci_stream.retrieval.index import GalleryIndex
from bci_stream.viewer.display import (
    DISPLAY_FILTERS,
    DisplayFilter,
    channel_health,
    spectrogram_extent,
    trace_view,
)
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


SCALES_UV = (10, 20, 50, 100, 200, 500, 1000)  # trace spacing choices, µV between channels
HEALTH_COLOURS = {"flat": "#808080", "railed": "#d03030", "noisy": "#e07020"}


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
    :class:`~bci_stream.live.session.LiveSession`'s own, or bare ones in tests); ``session`` takes the
    recording and stop commands; ``card`` (optional) gives the spectrogram's axes in Hz and ms;
    ``gallery`` (an embedding model's :class:`~bci_stream.retrieval.index.GalleryIndex`) adds the row of
    retrieved thumbnails above the class bars."""

    picture_ready = QtCore.pyqtSignal()  # a new picture: emitted on the renderer's (or receiver's) thread

    def __init__(self, state: SharedState, ch_names: list[str], sfreq: float, ring: RingBuffer | None = None,
                 session: ViewerSession | None = None, renderer_factory: Callable[[str], None] | None = None,
                 fps: float = 30.0, class_ids: list[str] | None = None, card: ModelCard | None = None,
                 gallery: GalleryIndex | None = None, traces: TracesSource | None = None):
        super().__init__()
        self.card = card if card is not None else (session.card if session is not None else None)
        self.class_ids = list(class_ids or (self.card.class_ids if self.card is not None else []))
        self.state, self.session, self.sfreq = state, session, sfreq
        self.ring = ring
        self.traces_source = traces if traces is not None else (RingTraces(ring, sfreq) if ring is not None else None)
        self.ch_names = ch_names
        self.renderer_factory = renderer_factory
        self.scale_uv = 50.0
        self.display_filter = DisplayFilter()
        self.setWindowTitle("bci-stream — live EEG visual decoder")
        self.resize(1280, 860)
        pg.setConfigOptions(antialias=False, imageAxisOrder="row-major")
        central = QtWidgets.QWidget()
        self.setCentralWidget(central)
        grid = QtWidgets.QGridLayout(central)
        n_classes = max(1, len(state.class_names))
        self._build_controls(grid, ch_names)
        self._build_traces(grid)
        self._build_spectrogram(grid)
        self._build_bars(grid, n_classes, gallery)
        self._build_picture(grid)
        self._build_history(grid, n_classes)
        for row, stretch in ((1, 3), (2, 2), (3, 1)):
            grid.setRowStretch(row, stretch)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        self.statusBar().addWidget(self.status, 1)
        self._select_group(self.group_box.currentText())
        self._shown_image = None
        self._shown_top5: list[int] = []
        self._events_shown = 0
        self._last_decisions = 0
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(int(1000 / fps))
        # a new picture is shown when it arrives (not at the next refresh): a queued signal, so the
        # renderer's or the receiver's thread only posts an event to this (the GUI) thread
        self.picture_ready.connect(self._show_new_picture)
        self.state.picture_listeners.append(self.picture_ready.emit)

    # --- the panels -------------------------------------------------------------------------------
    def _build_controls(self, grid: QtWidgets.QGridLayout, ch_names: list[str]) -> None:
        """Channel group, scale, display filter and renderer choices; log, model and screenshot buttons."""
        bar = QtWidgets.QHBoxLayout()
        self.group_box = QtWidgets.QComboBox()
        self.groups = channel_groups(ch_names)
        self.group_box.addItems(list(self.groups))
        self.group_box.currentTextChanged.connect(self._select_group)
        self.scale_box = QtWidgets.QComboBox()
        self.scale_box.addItems([f"{v} µV" for v in SCALES_UV])
        self.scale_box.setCurrentText("50 µV")
        self.scale_box.currentTextChanged.connect(self._set_scale)
        self.filter_box = QtWidgets.QComboBox()
        self.filter_box.addItems(list(DISPLAY_FILTERS))
        self.filter_box.currentTextChanged.connect(self._set_filter)
        self.renderer_box = QtWidgets.QComboBox()
        self.renderer_box.addItems([k for k in RENDER_KINDS if k != "none"] + ["none"])
        kind = self.state.renderer_kind
        self.renderer_box.setCurrentText(kind.split(" ")[0] if kind else "none")
        self.renderer_box.textActivated.connect(self._pick_renderer)
        self.record_button = QtWidgets.QPushButton("Start recording log")
        self.record_button.setCheckable(True)
        self.record_button.toggled.connect(self._toggle_recording)
        self.shot_button = QtWidgets.QPushButton("Save screenshot")
        self.shot_button.clicked.connect(lambda: self.save_screenshot())
        self.model_button = QtWidgets.QPushButton("Load model…")  # a hot-swap (refused models leave a message)
        self.model_button.clicked.connect(lambda: self.swap_model())
        for label, widget in (("Channels:", self.group_box), ("Scale:", self.scale_box),
                              ("Display filter:", self.filter_box), ("Renderer:", self.renderer_box)):
            bar.addWidget(QtWidgets.QLabel(label))
            bar.addWidget(widget)
        bar.addStretch(1)
        bar.addWidget(self.record_button)
        bar.addWidget(self.model_button)
        bar.addWidget(self.shot_button)
        grid.addLayout(bar, 0, 0, 1, 2)

    def _build_traces(self, grid: QtWidgets.QGridLayout) -> None:
        """The traces, with a scale bar and short marker codes (the event list names them)."""
        self.traces = pg.PlotWidget(title="EEG (µV; display filter: raw)")
        self.traces.setLabel("bottom", "time", units="s")
        self.traces.showGrid(x=True, y=False, alpha=0.2)
        self.traces.setXRange(-TRACE_SECONDS, 0)
        self.curves: list[pg.PlotDataItem] = []
        self.marker_lines: list[pg.InfiniteLine] = []
        self._marker_items: dict[tuple[float, str], pg.InfiniteLine] = {}
        self._marker_codes: dict[tuple[float, str], int] = {}
        self.scale_bar = pg.PlotDataItem(pen=pg.mkPen("w", width=3))
        self.scale_text = pg.TextItem("", color="w", anchor=(0, 0.5))
        self.traces.addItem(self.scale_bar)
        self.traces.addItem(self.scale_text)
        grid.addWidget(self.traces, 1, 0)

    def _build_spectrogram(self, grid: QtWidgets.QGridLayout) -> None:
        """The spectrogram of the shown channel group, Hz x ms, with a colour bar."""
        self.spec_plot = pg.PlotWidget(title="spectrogram of the last window (shown channels, z vs training)")
        self.spec_image = pg.ImageItem()
        self.spec_plot.addItem(self.spec_image)
        self.spec_bar = pg.ColorBarItem(values=(-3, 3), colorMap=pg.colormap.get("viridis"), label="z",
                                        interactive=False)
        self.spec_bar.setImageItem(self.spec_image, insert_in=self.spec_plot.getPlotItem())
        self._spec_extent = spectrogram_extent(self.card)
        self._spec_shape: tuple | None = None
        if self._spec_extent is not None and self.card.feature_kind == "erp":
            self.spec_plot.setTitle("ERP features of the last window (low-passed, decimated; shown channels, z)")
            self.spec_plot.setLabel("bottom", "time in window (ms)")
            self.spec_plot.getAxis("left").setTicks([[]])
        elif self._spec_extent is not None:
            self.spec_plot.setLabel("bottom", "time in window (ms)")
            self.spec_plot.setLabel("left", "frequency (Hz)")
        else:
            self.spec_plot.setLabel("bottom", "frame")
            self.spec_plot.setLabel("left", "frequency bin")
        grid.addWidget(self.spec_plot, 2, 0)

    def _build_bars(self, grid: QtWidgets.QGridLayout, n_classes: int, gallery: GalleryIndex | None) -> None:
        """Top-5 bars with their values and the chance level (and an embedding model's nearest images)."""
        self.bars_plot = pg.PlotWidget(title="top-5 class probabilities")
        self.bars_plot.getViewBox().invertY(True)
        self.bars_plot.setLabel("bottom", "probability")
        self.bars_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.bars = pg.BarGraphItem(x0=np.zeros(5), y=np.arange(5), height=0.7, width=np.zeros(5), brush="#3b8bd9")
        self.bars_plot.addItem(self.bars)
        self.bar_values = [pg.TextItem("", color="w", anchor=(0, 0.5)) for _ in range(5)]
        for item in self.bar_values:
            self.bars_plot.addItem(item)
        self.chance_line = pg.InfiniteLine(pos=1.0 / n_classes, angle=90, pen=pg.mkPen("#e0a030", style=QtCore.Qt.PenStyle.DashLine),
                                           label="chance", labelOpts={"position": 0.95, "color": "#e0a030"})
        self.bars_plot.addItem(self.chance_line)
        self.retrieval_strip = None
        if gallery is not None:  # an embedding model: its nearest images, then its gallery classes' bars
            from bci_stream.viewer.retrieval_strip import RetrievalStrip

            self.retrieval_strip = RetrievalStrip(gallery)
            self.bars_plot.setTitle("top-5 gallery classes (summed retrieval scores)")
            self.bars_plot.setMinimumHeight(150)
            right = QtWidgets.QWidget()
            rcol = QtWidgets.QVBoxLayout(right)
            rcol.setContentsMargins(0, 0, 0, 0)
            rcol.addWidget(self.retrieval_strip)
            rcol.addWidget(self.bars_plot, 1)
            grid.addWidget(right, 1, 1)
        else:
            grid.addWidget(self.bars_plot, 1, 1)

    def _build_picture(self, grid: QtWidgets.QGridLayout) -> None:
        """The rendered picture and its caption."""
        panel = QtWidgets.QWidget()
        col = QtWidgets.QVBoxLayout(panel)
        self.image_label = _TimedLabel("no picture yet", self._image_painted)
        self.painted: deque = deque(maxlen=1000)  # (RenderedImage, LSL time its first paint ended)
        self._unpainted = None  # a picture set on the label and not yet painted
        self.image_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.image_label.setMinimumSize(280, 280)
        self.image_caption = QtWidgets.QLabel("")
        self.image_caption.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        col.addWidget(self.image_label, 1)
        col.addWidget(self.image_caption)
        grid.addWidget(panel, 2, 1)

    def _build_history(self, grid: QtWidgets.QGridLayout, n_classes: int) -> None:
        """The top class over the last 10 s, and (event mode) the stimuli with hit / miss and the accuracy."""
        self.history_plot = pg.PlotWidget(title="top class, last 10 s (event mode: green hit, red miss)")
        self.history_plot.setMaximumHeight(150)
        self.history_plot.setLabel("left", "class")
        self.history_plot.setXRange(-10, 0)
        self.history_plot.setYRange(-0.5, n_classes - 0.5)
        self.history_points = pg.ScatterPlotItem(size=6, pen=None)
        self.history_plot.addItem(self.history_points)
        self._history: list[tuple[float, int, bool | None]] = []
        grid.addWidget(self.history_plot, 3, 0)
        events = QtWidgets.QWidget()
        ecol = QtWidgets.QVBoxLayout(events)
        ecol.setContentsMargins(0, 0, 0, 0)
        self.accuracy_label = QtWidgets.QLabel("event mode: no stimulus scored yet")
        self.accuracy_label.setWordWrap(True)
        self.event_list = QtWidgets.QListWidget()
        self.event_list.setMaximumHeight(120)
        ecol.addWidget(self.accuracy_label)
        ecol.addWidget(self.event_list)
        grid.addWidget(events, 3, 1)

    # --- controls --------------------------------------------------------------------------------
    def _select_group(self, name: str) -> None:
        self.channels = np.asarray(self.groups.get(name, []), dtype=int)
        for curve in self.curves:
            self.traces.removeItem(curve)
        self.curves = [self.traces.plot(pen=pg.mkPen(pg.intColor(i, hues=12), width=1)) for i in range(len(self.channels))]
        self._set_ticks()
        if self.traces_source is not None:  # traces from a decoding process: it is told what to send
            self.traces_source.select(self.channels)

    def _set_ticks(self) -> None:
        ticks = [(-k * self.scale_uv, self.ch_names[c]) for k, c in enumerate(self.channels)]
        self.traces.getAxis("left").setTicks([ticks])
        self.traces.setYRange(-self.scale_uv * (len(self.channels) - 0.5), self.scale_uv * 1.5)

    def _set_scale(self, text: str) -> None:
        self.scale_uv = float(text.split()[0])
        self._set_ticks()

    def _set_filter(self, name: str) -> None:
        self.display_filter = DISPLAY_FILTERS[name]
        self.traces.setTitle(f"EEG (µV; display filter: {self.display_filter.describe()})")
        if self.traces_source is not None:
            self.traces_source.set_filter(self.display_filter)

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

    def swap_model(self, path: str | Path | None = None) -> None:
        """Hot-swap the model at ``path`` (default: asked in a file dialog) into the running decoder."""
        if self.session is None:
            return
        if path is None:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Model to swap in", "", "ONNX models (*.onnx)")
            if not path:
                return
        self.session.swap_model(path)  # a model that does not fit leaves a message in the state

    def save_screenshot(self, path: str | Path | None = None) -> Path:
        from bci_stream.io.safe_write import write_with

        path = Path(path or f"bci-stream-{time.strftime('%Y%m%d-%H%M%S')}.png")

        def save(tmp: Path) -> None:
            if not self.grab().save(str(tmp), "PNG"):
                raise OSError(f"Qt could not write a PNG to {path}")

        write_with(path, save)
        self.state.update(message=f"saved {path}")
        return path

    # --- the 30 fps refresh --------------------------------------------------------------------
    def refresh(self) -> None:
        """One frame of every panel. A picture that arrived meanwhile is painted first, and again checked
        after the traces (the frame's longest part): the refresh does not make a new picture wait for it."""
        self._show_new_picture()
        snap = self.state.snapshot()
        if "health" not in snap and self.traces_source is not None:
            snap["health"] = self.traces_source.health(self.ch_names)
        self._refresh_traces(snap)
        self._show_new_picture()
        self._refresh_spectrogram(snap)
        self._refresh_bars(snap)
        if self.retrieval_strip is not None:
            recent = snap.get("event_recent") or []
            hit = recent[-1][3] if recent and snap.get("event_accuracy", {}).get("n") else None
            self.retrieval_strip.show_retrieval(snap.get("retrieval"), hit)
        self._refresh_history(snap)
        self._refresh_events(snap)
        self._refresh_image({"image": self.state.current_image()})  # the newest: never back to the snapshot's
        self._refresh_status(snap)

    def _refresh_traces(self, snap: dict) -> None:
        if self.traces_source is None or len(self.channels) == 0:
            return
        data, t, t_last = self.traces_source.view(self.channels, self.display_filter)
        if t_last is None or data.shape[1] < 2 or data.shape[0] != len(self.curves):
            return
        data = data - np.median(data, axis=1, keepdims=True)
        health = snap.get("health") or {}
        bad = {name: kind for kind, names in health.items() for name in names}
        for k, curve in enumerate(self.curves):
            curve.setData(t, data[k] - self.scale_uv * k)
            kind = bad.get(self.ch_names[self.channels[k]])
            curve.setPen(pg.mkPen(HEALTH_COLOURS[kind], width=2) if kind else pg.mkPen(pg.intColor(k, hues=12), width=1))
        x = -TRACE_SECONDS + 0.15
        self.scale_bar.setData([x, x], [self.scale_uv * 0.5, self.scale_uv * 1.5])
        self.scale_text.setText(f"{self.scale_uv:g} µV")
        self.scale_text.setPos(x + 0.05, self.scale_uv)
        visible = [(t, text) for t, text in snap["markers"][-20:] if -TRACE_SECONDS <= t - t_last <= 0]
        for key in [key for key in self._marker_items if key not in visible]:
            self.traces.removeItem(self._marker_items.pop(key))
        for t_marker, text in visible:  # lines are made once per marker and only moved afterwards
            line = self._marker_items.get((t_marker, text))
            if line is None:
                code = self._marker_codes.setdefault((t_marker, text), len(self._marker_codes) + 1)
                line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#e0a030", width=1), label=f"{code}",
                                       labelOpts={"position": 0.98, "color": "#e0a030"})
                self.traces.addItem(line)
                self._marker_items[(t_marker, text)] = line
            line.setValue(t_marker - t_last)
        self.marker_lines = [self._marker_items[key] for key in visible]

    def marker_label(self, text: str) -> str:
        """A marker for people: the class name for an ImageNet-style image id, else the text."""
        synset = text.rsplit("_", 1)[0]
        if self.class_ids and synset in self.class_ids:
            return self.state.class_names[self.class_ids.index(synset)]
        return text[:24]

    def _refresh_spectrogram(self, snap: dict) -> None:
        feats = snap["features"]
        if feats is None:
            return
        if feats.ndim == 3:  # (n_channels, n_freqs, n_frames) from an in-process session: the shown group
            feats = feats[self.channels].mean(axis=0) if len(self.channels) else feats.mean(axis=0)
        self.spec_image.setImage(feats, autoLevels=False)
        if self._spec_extent is not None and feats.shape != self._spec_shape:  # the rect scales the image's pixels
            self._spec_shape = feats.shape
            x0, width, y0, height = self._spec_extent
            self.spec_image.setRect(QtCore.QRectF(x0, y0, width, height))

    def _refresh_bars(self, snap: dict) -> None:
        probs, top5, names = snap["probabilities"], snap["top5"], snap["class_names"]
        if probs is None or not top5:
            return
        widths = np.array([probs[i] for i in top5])
        self.bars.setOpts(width=widths, y=np.arange(len(top5)))
        right = max(0.2, float(widths.max()) * 1.25, 2.0 / max(1, len(names)))
        self.bars_plot.setXRange(0, right, padding=0)
        for k, item in enumerate(self.bar_values):
            if k < len(widths):
                item.setText(f"{widths[k]:.2f}")
                item.setPos(widths[k] + right * 0.01, k)
        if top5 != self._shown_top5:  # new tick labels relayout the axis: only when the ranking changes
            self._shown_top5 = list(top5)
            self.bars_plot.getAxis("left").setTicks([[(k, names[i]) for k, i in enumerate(top5)]])

    def _refresh_history(self, snap: dict) -> None:
        if snap["n_decisions"] != self._last_decisions and snap["top5"]:
            self._last_decisions = snap["n_decisions"]
            recent = snap.get("event_recent") or []
            hit = recent[-1][3] if recent and snap.get("event_accuracy", {}).get("n") else None
            self._history.append((time.monotonic(), snap["top5"][0], hit))
        now = time.monotonic()
        self._history = [h for h in self._history if now - h[0] <= 10.0]
        if self._history:
            colours = ["#40c040" if h else "#d04040" if h is False else "#3b8bd9" for _, _, h in self._history]
            self.history_points.setData([h[0] - now for h in self._history], [h[1] for h in self._history],
                                        brush=colours)

    def _refresh_events(self, snap: dict) -> None:
        accuracy = snap.get("event_accuracy") or {}
        self.accuracy_label.setText(accuracy_text(accuracy, snap.get("accumulation")))
        names = snap["class_names"]
        recent = snap.get("event_recent") or []
        scored = accuracy.get("n", 0)
        if scored > self._events_shown and recent:
            for marker, truth, decided, hit in recent[-(scored - self._events_shown):]:
                code = next((c for (t, m), c in reversed(self._marker_codes.items()) if m == marker), None)
                prefix = f"#{code} " if code else ""
                item = QtWidgets.QListWidgetItem(f"{prefix}{'HIT ' if hit else 'miss'}  shown {names[truth]} -> "
                                                 f"decoded {names[decided]}  ({marker})")
                item.setForeground(QtGui.QColor("#40c040" if hit else "#d04040"))
                self.event_list.insertItem(0, item)
            self._events_shown = scored
            while self.event_list.count() > 200:
                self.event_list.takeItem(self.event_list.count() - 1)

    def _show_new_picture(self) -> None:
        """The state has a new picture (``picture_ready``): show it now."""
        rendered = self.state.current_image()
        if rendered is not None and rendered is not self._shown_image:
            self._refresh_image({"image": rendered})
            self.image_label.repaint()  # now, not with the next refresh's repaint of every panel

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
        health = snap.get("health") or {}
        bad = [f"{len(v)} {k} ({', '.join(v[:3])}{'…' if len(v) > 3 else ''})" for k, v in health.items() if v]
        parts.append("channels: " + ("; ".join(bad) if bad else "all ok"))
        if snap["ood_warning"]:
            parts.insert(0, f"⚠ {snap['ood_warning'][:140]}")
        if snap["renderer_error"]:
            parts.append(f"⚠ {snap['renderer_error'][:120]}")
        if snap.get("log_error"):
            parts.append(f"⚠ {snap['log_error'][:120]}")
        if snap["withheld_reason"]:
            parts.append(f"last withheld: {snap['withheld_reason'][:80]}")
        if snap.get("model"):
            since = snap.get("model_since", float("nan"))
            age = pylsl.local_clock() - since if since == since else float("nan")
            parts.insert(0, f"model: {snap['model']} (live for {age:.0f} s)")
        if snap.get("recording"):
            r = snap["recording"]
            state = "REC" if r.get("running") else ("⚠ REC FAILED" if r.get("error") else "recorded")
            parts.insert(1, f"{state} {Path(r['path']).name} {r['size'] / 1e6:.1f} MB {r['seconds']:.0f} s")
        if snap.get("calibration"):
            c = snap["calibration"]
            parts.insert(1, f"calibration: {c.get('phase', '')} {c.get('done', 0)}/{c.get('total', 0)}")
        if snap["message"]:
            parts.append(snap["message"][:80])
        text = "   |   ".join(parts)
        if text != self.status.text():
            self.status.setText(text)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.timer.stop()
        if self.picture_ready.emit in self.state.picture_listeners:  # the state may outlive the window
            self.state.picture_listeners.remove(self.picture_ready.emit)
        if self.session is not None:
            self.session.stop()
        super().closeEvent(event)


def accuracy_text(accuracy: dict, accumulation: dict | None = None) -> str:
    """The event-mode accuracy line the viewer shows (from ``RunningAccuracy.summary()``), with the
    accumulated decision's repeats when accumulation is on (``Accumulator.summary()``)."""
    last = (accumulation or {}).get("last") or {}
    repeats = (f" | accumulated over {last['repeats']} repeat(s){' (final)' if last.get('final') else ''}"
               if last else "")
    if not accuracy.get("n"):
        return ("event mode: no stimulus scored yet" if accuracy else "continuous mode (no stimulus scoring)") + repeats
    return f"event mode: {accuracy['n']} stimuli, {scoring_text(accuracy)} (95 % CIs){repeats}"


class RingTraces:
    """The traces of an in-process ring buffer, as a decoding process would send them
    (:class:`bci_stream.live.interfaces.TracesSource`)."""

    def __init__(self, ring: RingBuffer, sfreq: float):
        self.ring, self.sfreq = ring, sfreq

    def view(self, channels: np.ndarray, display: DisplayFilter) -> tuple:
        return trace_view(self.ring, TRACE_SECONDS, self.sfreq, channels, TRACE_POINTS, display)

    def select(self, channels: np.ndarray) -> None:
        """Nothing to tell: :meth:`view` reads the channels it is asked for."""

    def set_filter(self, display: DisplayFilter) -> None:
        """Nothing to tell: :meth:`view` filters as it is asked."""

    def health(self, ch_names: list[str]) -> dict:
        recent, _ = self.ring.snapshot(int(self.sfreq), slice(None), 1)
        return channel_health(recent.T, ch_names)


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
