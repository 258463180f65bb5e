"""Presenter timing: flip versus marker stamp, onset versus schedule, what an LSL consumer receives.

Runs ``bci_stream.present`` on N pictures (Qt's platform from ``QT_QPA_PLATFORM``: ``offscreen`` by
default; ``xcb`` under ``xvfb-run`` or a real display) with a marker inlet in this process, and reports:

- repaint: from the start of the synchronous ``repaint()`` to the stamp (the frame is in the window
  system's hands when it returns): the window within which the frame was made, i.e. the bound on
  how early the stamp could be;
- stamp − schedule: how late each picture came against its planned onset (Qt timer + the final
  precise wait);
- received − stamp: the stamp an LSL consumer gets, against the flip's (0: the marker carries it).

What it cannot measure: the display's vsync and panel lag (offscreen has no display; a QWidget never
sees the vsync). On a real screen, measure photons with ``--photodiode`` and a light sensor.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=$PWD python tools/bench_present.py --trials 300
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--duration", type=float, default=0.1)
    ap.add_argument("--isi", type=float, default=0.05)
    ap.add_argument("--size", type=int, nargs=2, default=(1280, 800), help="window, pixels")
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args()

    from bci_stream.lsl.config import use_loopback

    use_loopback()
    import pylsl
    from PIL import Image

    from bci_stream.contract.stimuli import scan_images
    from bci_stream.present.schedule import PresentConfig, build_schedule
    from bci_stream.present.window import marker_outlet, run_presenter

    folder = Path(tempfile.mkdtemp(prefix="bench-present-"))
    for k in range(4):
        (folder / f"c{k}").mkdir()
        for i in range(5):
            Image.new("RGB", (400, 400), (60 * k, 40 * i, 120)).save(folder / f"c{k}" / f"c{k}_{i}.jpg")
    events = build_schedule(scan_images(folder), PresentConfig(trials=args.trials, fixation=0.05, duration=args.duration,
                                                               isi=args.isi, isi_jitter=0.01, lead_in=1.0))
    name = f"bench-present-{uuid.uuid4().hex[:6]}"
    outlet = marker_outlet(name, name)
    inlet = pylsl.StreamInlet(pylsl.resolve_byprop("source_id", name, timeout=5)[0])
    inlet.open_stream(timeout=5)
    log = run_presenter(events, outlet, photodiode=True, size=tuple(args.size))
    received = []
    for _ in range(100):
        _, stamps = inlet.pull_chunk(timeout=0.05, max_samples=4096)
        received += stamps
        if len(received) >= len(log.stimuli):
            break
    flips = log.stimuli
    paint = np.array([f.stamp - f.paint_start for f in flips]) * 1e3
    late = np.array([f.stamp - f.scheduled for f in flips]) * 1e3
    diff = (np.array(received[: len(flips)]) - np.array([f.stamp for f in flips])) * 1e3

    def q(x):
        return {"median": round(float(np.median(x)), 3), "p99": round(float(np.percentile(x, 99)), 3),
                "max": round(float(np.max(np.abs(x))), 3), "sd": round(float(np.std(x)), 3)}

    out = {"platform": os.environ["QT_QPA_PLATFORM"], "pictures": len(flips), "window": list(args.size),
           "repaint_ms": q(paint), "stamp_minus_schedule_ms": q(late), "received_minus_stamp_ms": q(diff)}
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
