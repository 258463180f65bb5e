#!/usr/bin/env python
"""ONNX Runtime session options for the live decoder, measured side by side (batch 1, CPU).

Each variant is one session on the demo student; calls are interleaved (variant 1, 2, ..., 1, 2,
...) so that a busy neighbour slows them all alike. ``--gap-ms 20`` sleeps between calls as the live
loop does between decisions (the cold-core case); 0 runs them back to back. The choice in
``bci_stream/live/onnx_session.py`` and the IO binding in ``bci_stream/live/decoder.py`` point here.

    python tools/bench_onnx.py [--repeats 2000] [--gap-ms 0] [--json onnx.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bci_stream.resources import DEMO_MODEL  # noqa: E402


def make_session(model: Path, **changes):
    """A session as ``open_session`` makes it, with ``changes`` applied (option name -> value; keys
    with a dot are session config entries)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    for key, value in changes.items():
        if "." in key:
            options.add_session_config_entry(key, value)
        else:
            setattr(options, key, value)
    return ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])


def caller(session, x: np.ndarray, binding: bool):
    """A function making one call: ``session.run`` with a feed dict, or ``run_with_iobinding`` with
    the input and output bound once (as the decoder does)."""
    import onnxruntime as ort

    name = session.get_inputs()[0].name
    if not binding:
        return lambda: session.run(None, {name: x})
    out = np.empty((1, session.get_outputs()[0].shape[1]), np.float32)
    io = session.io_binding()
    io.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(x))
    io.bind_ortvalue_output(session.get_outputs()[0].name, ort.OrtValue.ortvalue_from_numpy(out))
    return lambda: session.run_with_iobinding(io)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--gap-ms", type=float, default=0.0, help="sleep between calls (20: as between live decisions)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    import onnxruntime as ort

    model = Path(args.model)
    shape = [d if isinstance(d, int) else 1 for d in make_session(model).get_inputs()[0].shape]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    level = ort.GraphOptimizationLevel
    variants = {
        "run(), ENABLE_ALL (the old default)": (make_session(model), False),
        "IO binding, ENABLE_ALL (the decoder now)": (make_session(model), True),
        "IO binding, ENABLE_EXTENDED": (make_session(model, graph_optimization_level=level.ORT_ENABLE_EXTENDED), True),
        "IO binding, ENABLE_BASIC": (make_session(model, graph_optimization_level=level.ORT_ENABLE_BASIC), True),
        "IO binding, no memory pattern": (make_session(model, enable_mem_pattern=False), True),
        "IO binding, no CPU arena": (make_session(model, enable_cpu_mem_arena=False), True),
        "IO binding, denormals as zero": (make_session(model, **{"session.set_denormal_as_zero": "1"}), True),
        "IO binding, no intra-op spinning": (make_session(model, **{"session.intra_op.allow_spinning": "0"}), True),
    }
    calls = {label: caller(s, x, b) for label, (s, b) in variants.items()}
    for call in calls.values():
        for _ in range(200):
            call()
    times = {label: np.empty(args.repeats) for label in calls}
    for i in range(args.repeats):
        for label, call in calls.items():
            if args.gap_ms:
                time.sleep(args.gap_ms / 1000)
            t0 = time.perf_counter()
            call()
            times[label][i] = time.perf_counter() - t0
    print(f"{model.name}, input {tuple(shape)}, {args.repeats} calls each, interleaved, gap {args.gap_ms:g} ms "
          "(median / p99, ms):")
    figures = {}
    for label, t in times.items():
        figures[label] = {"p50_ms": float(np.median(t) * 1e3), "p99_ms": float(np.percentile(t, 99) * 1e3)}
        print(f"  {label:45s} {figures[label]['p50_ms']:7.3f} / {figures[label]['p99_ms']:7.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": vars(args), "variants": figures}, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
