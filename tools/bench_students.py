#!/usr/bin/env python
"""The seed's Table 1 on the phantom: KD student vs plain CNN vs LSTM vs logistic regression vs the
oracle, by image; plus the controls (by block, leave-one-subject-out, shuffled labels). Prints the
report and the wall time; writes RUN_DIR/report.md, comparison.json and confusion PNGs.

    python tools/bench_students.py --out runs/table1            # 6 subjects x 40 classes, ~30 min on 2 cores
    python tools/bench_students.py --data phantom:subjects=2,classes=10 --epochs 10 --out runs/small
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bci_stream.phantom import Phantom  # noqa: E402
from offline_training.datasets import load_trials, parse_spec  # noqa: E402
from offline_training.datasets.phantom import phantom_config  # noqa: E402
from offline_training.distill import TrainConfig  # noqa: E402
from offline_training.pipeline import compare  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="phantom:subjects=6,classes=40,channels=128,images=50,seed=0")
    parser.add_argument("--out", default="runs/table1")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--no-controls", action="store_true")
    parser.add_argument("--no-lstm", action="store_true")
    args = parser.parse_args()
    kind, _, options = parse_spec(args.data)
    if kind != "phantom":
        sys.exit("this benchmark needs the phantom (its oracle is the ceiling); use `bci-train run` for other data")
    t0 = time.perf_counter()
    trials = load_trials(args.data)
    oracle = Phantom(phantom_config(**options)).oracle_probabilities
    rows = compare(trials, args.out, TrainConfig(epochs=args.epochs, patience=8), trials.soft_labels,
                   "phantom class-similarity", oracle=oracle, controls=not args.no_controls, lstm=not args.no_lstm)
    print((Path(args.out) / "report.md").read_text())
    for name, m in rows:
        if "train_seconds" in m:
            print(f"  {name}: trained in {m['train_seconds']:.0f} s")
    print(f"total wall time {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
