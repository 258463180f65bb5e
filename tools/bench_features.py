#!/usr/bin/env python
"""Spectrogram cost per window: bci_stream.contract.features (hop-long blocks x windowed-DFT matrix) against
scipy.signal.stft, the incremental spectrogram of a window moved by one 20-sample hop, and ONNX
Runtime vs torch eager for the demo student, batch 1; the whole Decoder.classify, in full and rolled.

    python tools/bench_features.py [--channels 128] [--samples 440] [--repeats 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bci_stream.resources import DEMO_MODEL  # noqa: E402


def timeit(fn, repeats: int) -> tuple[float, float]:
    for _ in range(max(500, repeats)):  # numpy's allocator and caches settle over the first calls
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.median(times) * 1e3), float(np.percentile(times, 99) * 1e3)


def _model_rows(args, x: np.ndarray, next_window) -> list:
    """The model's rows (ONNX Runtime, torch eager, whole decisions) when it has ``args.channels`` channels."""
    import torch

    from bci_stream.contract.model_card import ModelCard
    from bci_stream.live.decoder import Decoder
    from offline_training.students import build_from_card_architecture

    rows: list = []
    card = ModelCard.from_onnx(args.model)
    if card.n_channels == args.channels:
        decoder = Decoder(args.model, providers="cpu")
        feats = decoder.features(x)[None]
        rows.append(("ONNX Runtime student, batch 1 (1 thread)",
                     timeit(lambda: decoder.session.run(None, {decoder.input_name: feats}), args.repeats)))
        torch.set_num_threads(1)
        net = build_from_card_architecture(card.architecture).eval()
        tx = torch.from_numpy(feats)

        def eager():
            with torch.no_grad():
                torch.softmax(net(tx), 1)

        rows.append(("torch eager student, batch 1 (1 thread)", timeit(eager, args.repeats)))
        rows.append(("whole decision: Decoder.classify, in full", timeit(lambda: decoder.classify(x), args.repeats)))
        rows.append(("whole decision: Decoder.classify, rolled 20 samples",
                     timeit(lambda: decoder.classify(*next_window()), args.repeats)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--samples", type=int, default=440)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    import scipy.signal
    from threadpoolctl import threadpool_limits

    from bci_stream.contract.features import RollingSpectrogram, SpectrogramConfig, spectrogram

    threadpool_limits(1, user_api="blas")  # as in the live loop
    x = np.random.default_rng(0).standard_normal((args.channels, args.samples)).astype(np.float32)
    # a stream, time-major as in the ring buffer, and windows of it one 20-sample hop apart
    stream = np.random.default_rng(1).standard_normal((args.samples + 20 * 4000, args.channels)).astype(np.float32)
    position = [args.samples]

    def next_window() -> tuple[np.ndarray, int]:
        position[0] = position[0] + 20 if position[0] + 20 <= len(stream) else args.samples + 20
        return stream[position[0] - args.samples : position[0]].T, position[0]

    rows = [("bci_stream.contract.features.spectrogram", timeit(lambda: spectrogram(x), args.repeats)),
            ("np.abs(scipy.signal.stft(...))", timeit(lambda: np.abs(scipy.signal.stft(x, 1000.0, nperseg=40)[2]), args.repeats))]
    config = SpectrogramConfig()
    if RollingSpectrogram.supports(config, args.samples):
        rolling = RollingSpectrogram(config, args.channels, args.samples)
        outs = [np.empty((args.channels, config.n_rows(), config.n_frames(args.samples)), np.float32) for _ in range(2)]
        turn = [0]

        def roll():
            window, end = next_window()
            if rolling.shift_for(end):
                rolling.roll(window, end, outs[turn[0]], outs[1 - turn[0]])
            else:
                rolling.full(window, end, outs[1 - turn[0]])
            turn[0] = 1 - turn[0]

        rows.append(("RollingSpectrogram, window moved by 20 samples", timeit(roll, args.repeats)))
    if Path(args.model).exists():
        rows += _model_rows(args, x, next_window)
    print(f"{args.channels} ch x {args.samples} samples, {args.repeats} repeats (median / p99, ms):")
    for label, (p50, p99) in rows:
        print(f"  {label:52s} {p50:7.3f} / {p99:7.3f}")
    if args.json:
        import json

        Path(args.json).write_text(json.dumps({"config": vars(args), "rows": {label: {"p50_ms": p50, "p99_ms": p99}
                                                                              for label, (p50, p99) in rows}}, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
