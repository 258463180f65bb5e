#!/usr/bin/env python
"""Capacity: how many 128 ch x 1 kHz streams one machine decodes at once, one decoding process each,
with decision p99 <= --p99-ms and 0 lost samples.

For N = 1, 2, ... (``--streams 1,2,3,4``) one sender process pushes N streams (noise with the demo
model's channel names and a SAMPLE_INDEX channel, 10 ms chunks, stamps on the nominal schedule:
light, so the decoders get the cores), and N decoding processes (``tools/bench_latency.py``'s
``run_ours``: LSL inlet, ring, incremental spectrogram, ONNX Runtime, LSL outlet) decode one each
for --seconds. Prints a table (N, median p50 over the streams, worst p99, worst max, lost samples,
CPU % of all decoders together, pass) and writes JSON. The sender's own CPU is printed apart.

    python tools/bench_capacity.py --streams 1,2,3,4,6 --seconds 60 --json capacity.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bci_stream.resources import DEMO_MODEL  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))


def push(names: list[str], model: str, seconds: float) -> None:
    """Sender: stream ``names`` (one outlet each) for ``seconds``, all from one thread."""
    import pylsl

    from bci_stream.contract.model_card import ModelCard
    from bci_stream.sources.simulate import OutletConfig, PacedPusher

    card = ModelCard.from_onnx(model)
    noise = (np.random.default_rng(0).standard_normal((card.n_channels, 10_000)) * 10).astype(np.float32)

    def reader():
        position = [0]

        def read(n: int):
            start = position[0] % (noise.shape[1] - n)
            position[0] += n
            return noise[:, start : start + n], []

        return read

    pushers = [PacedPusher(reader(), card.n_channels, card.sfreq, OutletConfig(name=n, source_id=n, counter=True),
                           list(card.ch_names)) for n in names]
    chunk = pushers[0].chunk_samples / card.sfreq
    t0, t0_lsl = time.perf_counter(), pylsl.local_clock()
    cpu0 = time.process_time()
    k = 0
    while time.perf_counter() - t0 < seconds:
        k += 1
        for p in pushers:
            p.read_ahead()  # every stream's chunk ready before it is due (PacedPusher.run does the same)
        delay = t0 + k * chunk - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for p in pushers:
            p.push_once(t0_lsl)
    print("SENDER" + json.dumps({"cpu_percent": (time.process_time() - cpu0) / (time.perf_counter() - t0) * 100}),
          flush=True)


def decode(name: str, model: str, seconds: float, wait: str) -> None:
    """One decoding process: ``run_ours`` on stream ``name``; its figures as JSON on stdout."""
    import bci_stream.lsl.config

    bci_stream.lsl.config.use_loopback = lambda *a, **k: None  # keep the inherited session (bench_latency sets one)
    from bench_latency import run_ours

    from bci_stream.lsl.inlet import find_streams  # a continuous resolver: many processes resolving at once

    if not find_streams(name, "EEG", timeout=60):
        raise SystemExit(f"no stream {name!r}")

    print("RESULT" + json.dumps(run_ours(Path(model), name, seconds, 0.02, 1, wait=wait)), flush=True)


def run_level(n: int, args) -> dict:
    """N streams, N decoders, at once."""
    env = dict(os.environ)
    names = [f"cap-{uuid.uuid4().hex[:6]}-{i}" for i in range(n)]
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--model", args.model]
    sender = subprocess.Popen(me + ["--push", ",".join(names), "--seconds", str(args.seconds + 90)] + common,
                              env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    decoders = [subprocess.Popen(me + ["--decode", name, "--seconds", str(args.seconds), "--wait", args.wait] + common,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
                for name in names]
    results = []
    for d in decoders:
        out, _ = d.communicate(timeout=args.seconds + 180)
        lines = [line for line in out.splitlines() if line.startswith("RESULT")]
        results.append(json.loads(lines[-1][6:]) if lines else {"n": 0, "error": "decoder failed"})
    sender.terminate()
    sender_out, _ = sender.communicate(timeout=30)
    ok = [r for r in results if r.get("n")]
    row = {"streams": n, "decoders_ok": len(ok), "per_stream": results}
    if ok:
        row.update(p50_ms=float(np.median([r["p50_ms"] for r in ok])), worst_p99_ms=max(r["p99_ms"] for r in ok),
                   worst_max_ms=max(r["max_ms"] for r in ok), lost_samples=sum(r["lost_samples"] for r in ok),
                   skipped=sum(r.get("skipped", 0) for r in ok), cpu_percent=sum(r["cpu_percent"] for r in ok))
        row["pass"] = (len(ok) == n and row["worst_p99_ms"] <= args.p99_ms and row["lost_samples"] == 0
                       and row["skipped"] == 0)
    else:
        row["pass"] = False
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default="1,2,3,4", help="comma-separated numbers of streams to try")
    parser.add_argument("--seconds", type=float, default=60.0, help="decoding time per level")
    parser.add_argument("--p99-ms", type=float, default=10.0)
    parser.add_argument("--wait", default="block", help="decoders' wait mode (bci_stream/live/wait.py)")
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--push", help=argparse.SUPPRESS)  # internal: be the sender of these streams
    parser.add_argument("--decode", help=argparse.SUPPRESS)  # internal: be one decoder of this stream
    args = parser.parse_args()
    if args.push or args.decode:
        # the parent's loopback config (LSLAPICFG), inherited: same liblsl session
        if args.push:
            push(args.push.split(","), args.model, args.seconds)
        else:
            decode(args.decode, args.model, args.seconds, args.wait)
        return 0
    from bci_stream.lsl.config import use_loopback

    use_loopback()  # sets LSLAPICFG for the sender and decoders
    levels = [int(v) for v in args.streams.split(",") if v.strip()]
    print(f"{os.cpu_count()} CPUs; 128 ch x 1 kHz streams, hop 20 ms, demo model, {args.seconds:g} s per level, "
          f"wait {args.wait}; pass: p99 <= {args.p99_ms:g} ms, 0 lost, 0 skipped")
    print(f"{'streams':>7s} {'p50 (median)':>13s} {'worst p99':>10s} {'worst max':>10s} {'lost':>5s} {'CPU %':>6s}  pass")
    rows = []
    for n in levels:
        row = run_level(n, args)
        rows.append(row)
        if row.get("decoders_ok"):
            print(f"{n:7d} {row['p50_ms']:10.2f} ms {row['worst_p99_ms']:7.2f} ms {row['worst_max_ms']:7.2f} ms "
                  f"{row['lost_samples']:5d} {row['cpu_percent']:6.0f}  {'yes' if row['pass'] else 'NO'}")
        else:
            print(f"{n:7d}  decoders failed")
    passed = [r["streams"] for r in rows if r["pass"]]
    print(f"most streams passing: {max(passed) if passed else 0}")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": vars(args), "levels": rows}, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
