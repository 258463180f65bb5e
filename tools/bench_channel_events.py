"""Events from a channel of the EEG stream against the LSL marker stream, on real recordings: each Muse
recording of ``../shared/data/real/eegnb_muse`` is replayed over real LSL (loopback) with its marker column
as a trigger channel ``Marker0`` of the EEG stream AND as the LSL marker stream, and decoded live with
``--events-from Marker0`` (the shipped faces-vs-houses model; the decisions do not matter here). Each channel
event is paired with its LSL marker; the offset ``t_channel - t_marker`` is what a marker stream costs over
hardware tagging. Writes ``docs/benchmarks/channel_events.json`` and ``docs/channel_events.png``.

    PYTHONPATH=$PWD python tools/bench_channel_events.py [--speed 8] [--max-files 4]

Replayed through ``bci_stream.sources.replay`` (the marker stream's stamps are its samples' stamps, as a
stimulus program that stamps with the amplifier's clock would send them); on one machine, so the clock
offset between the two inlets is the loopback's.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "eegnb_muse"
MODEL = ROOT / "bci_stream" / "data" / "real" / "faces_houses.onnx"
OUT_JSON = ROOT / "docs" / "benchmarks" / "channel_events.json"
OUT_PNG = ROOT / "docs" / "channel_events.png"


def one(path: Path, speed: float, index: int) -> dict:
    from bci_stream.io import read_recording
    from bci_stream.live.channel_events import ChannelEventsConfig
    from bci_stream.live.decoder import Decoder
    from bci_stream.live.session import LiveConfig, LiveSession
    from bci_stream.sources.replay import recording_pusher, with_events_channel
    from bci_stream.sources.simulate import OutletConfig

    recording, codes = with_events_channel(read_recording(path), "Marker0")
    name = f"bench-chev-{int(time.time())}-{index}"
    offsets: list[float] = []
    session = LiveSession(Decoder(MODEL, providers="cpu"), LiveConfig(
        stream=name, mode="event", outlet_name=f"{name}-pred",
        events=ChannelEventsConfig(channel="Marker0", codes=tuple((str(c), t) for t, c in codes.items()))))
    session.channel_events.pairs.on_pair = lambda r: offsets.append(r["offset_ms"])
    pusher = recording_pusher(recording, OutletConfig(name=name, source_id=name, counter=True), speed=speed)
    session.start()
    runner = threading.Thread(target=session.run, kwargs={"seconds": recording.duration / speed + 20})
    runner.start()
    pusher.start()
    deadline = time.monotonic() + recording.duration / speed + 20
    while pusher.sent < recording.n_times and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the last chunks and markers arrive
    session.stop()
    runner.join()
    pusher.close()
    s = session.state.summary()["channel_events"]
    return {"file": str(path.relative_to(REAL)), "markers_in_file": len(recording.events), "events": s["events"],
            **s["offset_vs_lsl_markers"], "lost_samples": session.source.lost_samples,
            "sample_ms": round(1e3 / recording.sfreq, 4), "offsets_ms": offsets}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=8.0)
    ap.add_argument("--max-files", type=int, default=4, help="recordings per set (N170, P300)")
    args = ap.parse_args()
    if not REAL.is_dir():
        print(f"the real data sets are not at {REAL}")
        return 1
    files = [p for task in ("N170", "P300") for p in sorted((REAL / task).rglob("*.csv"))[: args.max_files]]
    rows = []
    for i, path in enumerate(files):
        row = one(path, args.speed, i)
        print(f"{row['file']}: {row['events']} events / {row['markers_in_file']} markers, {row['pairs']} pairs, "
              f"median {row.get('median_ms', float('nan')):+.4f} ms, max |offset| {row.get('max_abs_ms', float('nan')):.4f} ms",
              flush=True)
        rows.append(row)
    every = np.concatenate([r["offsets_ms"] for r in rows])
    overall = {"pairs": int(len(every)), "events": sum(r["events"] for r in rows),
               "markers_in_files": sum(r["markers_in_file"] for r in rows),
               "median_ms": float(np.median(every)), "p95_abs_ms": float(np.percentile(np.abs(every), 95)),
               "max_abs_ms": float(np.abs(every).max()), "sample_ms": rows[0]["sample_ms"]}
    print(f"overall: {overall}")
    OUT_JSON.write_text(json.dumps({"command": "PYTHONPATH=$PWD python tools/bench_channel_events.py "
                                               f"--speed {args.speed:g} --max-files {args.max_files}",
                                    "speed": args.speed, "overall": overall,
                                    "recordings": [{k: v for k, v in r.items() if k != "offsets_ms"} for r in rows]},
                                   indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(every * 1e3, bins=50)
    ax.set_xlabel("t_channel - t_LSL marker (µs)")
    ax.set_ylabel("stimuli")
    ax.set_title(f"channel events vs LSL markers, {len(every)} stimuli, {len(rows)} Muse recordings "
                 f"(one sample = {overall['sample_ms']:.2f} ms)", fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT_PNG, dpi=110)
    print(f"wrote {OUT_JSON.relative_to(ROOT)} and {OUT_PNG.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
