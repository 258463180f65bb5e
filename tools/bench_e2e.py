#!/usr/bin/env python
"""The whole path from a stimulus to its picture, timed: stimulus marker → decision on the LSL
outlet → picture ready from the renderer → picture painted in the viewer.

Runs the app as a user does (``bci-stream live`` with the viewer, event mode): the phantom headset
streams EEG and a stimulus marker every ``--isi`` s from a second process; the decoding process
(Qt-free, with the renderer) decodes the epoch after each marker; this process shows the viewer
(``QT_QPA_PLATFORM=offscreen`` without a display) and also reads the predictions outlet and the
marker stream over LSL. For every stimulus (all times on this machine's LSL clock):

- floor: the marker to the window's last sample (offset + window length): no code can beat it;
- (a) decision: marker → probabilities published (``t_emitted``), and → received by a consumer
  of the outlet (this process's inlet);
- (b) picture ready: marker → the renderer's picture in the decoding process's state;
- (c) picture painted: marker → the viewer's first paint of that picture (``MainWindow.painted``;
  the decoding process tells the viewer of a new picture at once, and the viewer repaints on it), and
  per picture how long after it was ready.

Each stage is also given after the floor (from the window's last sample). Gallery renderer by
default; ``--renderer diffusion`` on a GPU machine.

    QT_QPA_PLATFORM=offscreen python tools/bench_e2e.py --seconds 60 --json e2e.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pylsl  # noqa: E402

from bci_stream.lsl.config import use_loopback  # noqa: E402
from bci_stream.lsl.inlet import find_streams  # noqa: E402
from bci_stream.resources import DEMO_MODEL  # noqa: E402


class Reader(threading.Thread):
    """Pulls an LSL stream until stopped: ``rows`` of (stamp, local receipt time, sample)."""

    def __init__(self, name: str, timeout: float = 20.0):
        super().__init__(daemon=True)
        found = find_streams(name, "", timeout=timeout)  # by name; a continuous resolver
        if not found:
            raise RuntimeError(f"no LSL stream {name!r}")
        self.inlet = pylsl.StreamInlet(found[0], max_buflen=10)
        self.inlet.open_stream(timeout=10)
        self.rows: list[tuple[float, float, list]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            sample, stamp = self.inlet.pull_sample(timeout=0.05)
            if stamp is not None:
                self.rows.append((stamp + self.inlet.time_correction(), pylsl.local_clock(), sample))


def stats(values: list[float]) -> dict:
    v = np.asarray(values, float) * 1e3
    if v.size == 0:
        return {"n": 0}
    return {"n": int(v.size), "p50_ms": float(np.percentile(v, 50)), "p95_ms": float(np.percentile(v, 95)),
            "p99_ms": float(np.percentile(v, 99)), "max_ms": float(v.max())}


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--isi", type=float, default=0.5, help="seconds between stimuli")
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--renderer", default="gallery", choices=["gallery", "diffusion"])
    parser.add_argument("--size", type=int, default=512, help="picture side, pixels")
    parser.add_argument("--fps", type=float, default=30.0, help="viewer refresh rate")
    parser.add_argument("--wait", default="block", help="the decoding loop's wait mode (bci_stream/live/wait.py)")
    parser.add_argument("--json", help="write the figures here")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # here, not at import: the spawned decoding process imports this module again and must keep
    # the session id it inherits (LSLAPICFG), not make a new one
    use_loopback()

    from PyQt6 import QtCore, QtWidgets

    from bci_stream.contract.model_card import ModelCard
    from bci_stream.live.session import LiveConfig, LiveSpec
    from bci_stream.live.wait import WaitConfig
    from bci_stream.render.base import RenderConfig
    from bci_stream.viewer.decoding_process import DecodingProcess
    from bci_stream.viewer.main_window import MainWindow

    card = ModelCard.from_onnx(args.model)
    name, outlet = f"e2e-{uuid.uuid4().hex[:8]}", f"e2e-pred-{uuid.uuid4().hex[:6]}"
    sim = subprocess.Popen([sys.executable, "-m", "bci_stream.cli", "simulate", "--channels", str(card.n_channels),
                            "--sfreq", str(card.sfreq), "--classes", str(card.n_classes), "--isi", str(args.isi),
                            "--name", name, "--duration", str(args.seconds + 60)], cwd=ROOT, env=dict(os.environ),
                           stdout=subprocess.DEVNULL)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    try:
        if not find_streams(name, "EEG", timeout=60):  # the phantom takes a while to build its headset
            raise RuntimeError("the phantom did not start streaming within 60 s")
        # 1. the app: decoding process (event mode, renderer) and the viewer here
        # interval: render every decision, even of the class shown last (a picture per stimulus to time)
        spec = LiveSpec(model=args.model, providers="cpu",
                        live=LiveConfig(stream=name, markers=f"{name}-markers", mode="event", outlet_name=outlet,
                                        wait=WaitConfig(args.wait)),
                        render=RenderConfig(kind=args.renderer, size=args.size, interval=1e-3), seconds=args.seconds)
        decoding = DecodingProcess(spec)
        markers, decisions = Reader(f"{name}-markers"), Reader(outlet)
        markers.start()
        decisions.start()
        window = MainWindow(decoding.state, card.ch_names, card.sfreq, traces=decoding.traces, session=decoding,
                            fps=args.fps, class_ids=list(card.class_ids))
        window.show()
        done = QtCore.QTimer()
        done.timeout.connect(lambda: None if decoding.running else app.quit())
        done.start(200)
        app.exec()
        decoding.stop()
        summary = decoding.join()
        markers.stop.set()
        decisions.stop.set()
    finally:
        sim.terminate()
        sim.wait(timeout=10)

    # 2. match: a marker's decision ends its window (offset + window) after it; pictures carry t_marker
    results = _figures(args, card, summary, markers, decisions, window)
    _print_figures(args, card, results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}")
    return 0


def _figures(args, card, summary: dict, markers: Reader, decisions: Reader, window) -> dict:
    """Each stage's latency from the marker and after the window: decisions matched to their markers by
    the window's end, pictures by the ``t_marker`` they carry."""
    floor = (card.offset_samples + card.window_samples) / card.sfreq
    last_sample = (card.offset_samples + card.window_samples - 1) / card.sfreq
    emitted_col = card.n_classes + 7  # PredictionOutlet.EXTRA: top1..top5, window_end_sample, latency_ms, t_emitted
    outs = np.array([(stamp, received, sample[emitted_col]) for stamp, received, sample in decisions.rows]).reshape(-1, 3)
    marker_times = np.array([stamp for stamp, _, _ in markers.rows])
    a_emit, a_recv, a_emit_after, ends = [], [], [], {}
    for t_m in marker_times:
        if outs.size == 0:
            break
        i = int(np.argmin(np.abs(outs[:, 0] - (t_m + last_sample))))
        if abs(outs[i, 0] - (t_m + last_sample)) <= 1.5 / card.sfreq:
            a_emit.append(outs[i, 2] - t_m)
            a_recv.append(outs[i, 1] - t_m)
            a_emit_after.append(outs[i, 2] - outs[i, 0])
            ends[round(t_m, 4)] = outs[i, 0]
    b_ready, c_painted, b_after, c_after, paint_gap = [], [], [], [], []
    for rendered, t_painted in window.painted:
        if rendered.t_marker is None or rendered.t_decision is None:
            continue
        b_ready.append(rendered.t_created - rendered.t_marker)
        c_painted.append(t_painted - rendered.t_marker)
        b_after.append(rendered.t_created - rendered.t_decision)
        c_after.append(t_painted - rendered.t_decision)
        paint_gap.append(t_painted - rendered.t_created)  # issue 25's budget: painted <= 10 ms after ready
    return {
        "config": vars(args), "floor_ms": floor * 1e3, "markers": int(marker_times.size), "decisions": int(len(outs)),
        "pictures_painted": len(c_painted), "session": summary,
        "from_marker": {"a_decision_published": stats(a_emit), "a_decision_received": stats(a_recv),
                        "b_picture_ready": stats(b_ready), "c_picture_painted": stats(c_painted)},
        "after_window": {"a_decision_published": stats(a_emit_after), "b_picture_ready": stats(b_after),
                         "c_picture_painted": stats(c_after)},
        "painted_after_ready": stats(paint_gap),
    }


def _print_figures(args, card, results: dict) -> None:
    floor = results["floor_ms"] / 1e3
    print(f"{card.n_channels} ch @ {card.sfreq:g} Hz, event mode, a stimulus every {args.isi:g} s for {args.seconds:g} s, "
          f"{args.renderer} renderer {args.size}², viewer {args.fps:g} fps (offscreen), wait {args.wait}")
    print(f"markers {results['markers']}, decisions {results['decisions']}, pictures painted {results['pictures_painted']}")
    print(f"floor (offset + window, no code can beat it): {floor * 1e3:.1f} ms")
    print(f"{'stage':34s} {'from marker p50 / p99':>24s}   {'after the window p50 / p99':>28s}")
    rows = [("(a) decision published", "a_decision_published"), ("(a) decision received on the outlet", "a_decision_received"),
            ("(b) picture ready (renderer)", "b_picture_ready"), ("(c) picture painted (viewer)", "c_picture_painted")]
    for label, key in rows:
        m = results["from_marker"][key]
        w = results["after_window"].get(key)
        left = f"{m['p50_ms']:9.2f} / {m['p99_ms']:8.2f} ms" if m["n"] else "—"
        right = f"{w['p50_ms']:9.2f} / {w['p99_ms']:8.2f} ms" if w and w["n"] else ""
        print(f"{label:34s} {left:>24s}   {right:>28s}")
    gap = results["painted_after_ready"]
    if gap["n"]:
        print(f"picture painted after it was ready, per picture: p50 {gap['p50_ms']:.2f} ms, p95 {gap['p95_ms']:.2f}, "
              f"p99 {gap['p99_ms']:.2f}, max {gap['max_ms']:.2f} (n={gap['n']})")


if __name__ == "__main__":
    sys.exit(main())
