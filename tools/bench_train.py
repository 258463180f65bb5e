#!/usr/bin/env python
"""Training throughput of every student (the registry in ``offline_training.students``) on one data set,
in one run, on one device: features (computed once per student, as ``fit`` does), seconds per epoch
(training pass + validation + checkpoint) and training trials per second (training pass alone).

The first epoch is a warm-up (allocator, cuDNN autotuning, lazy initialisation): the figures are medians
over the epochs after it. Prints a table and writes JSON (``--json``).

    python tools/bench_train.py --data phantom:subjects=1,classes=10,channels=32,images=20 --epochs 3
    python tools/bench_train.py --device cuda --amp --data phantom:subjects=6,classes=40 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offline_training.datasets import load_trials  # noqa: E402
from offline_training.experiments.pipeline import for_data, student_config  # noqa: E402
from offline_training.students import STUDENTS  # noqa: E402
from offline_training.training.device import describe, resolve_device  # noqa: E402
from offline_training.training.fit import TrainConfig, fit, input_shape, model_inputs  # noqa: E402
from offline_training.training.splits import make_split  # noqa: E402

SMALL = "phantom:subjects=1,classes=10,channels=32,images=20"


@dataclass(frozen=True)
class Row:
    student: str
    input_shape: tuple[int, ...]
    parameters: int
    features_s: float
    epoch_s: float
    train_trials_per_s: float
    epochs: int


def bench_student(trials, split: dict, base: TrainConfig, student: str, soft: np.ndarray | None, out: Path) -> Row:
    """Features once, then ``fit`` for ``base.epochs`` epochs; medians over the epochs after the first."""
    config = student_config(base, student, kd=soft is not None)
    t0 = time.perf_counter()
    inputs = model_inputs(trials, config)
    features_s = time.perf_counter() - t0
    info = fit(trials, split, config, out / student, soft, progress=False, inputs=inputs).info
    timed = info["history"][1:] or info["history"]
    epoch_s = float(np.median([h["seconds"] for h in timed]))
    train_s = float(np.median([h["train_seconds"] for h in timed]))
    from offline_training.students import build_student

    n_params = sum(p.numel() for p in build_student(student, **info["student_args"]).parameters())
    return Row(student, tuple(input_shape(trials, config, jitter=False)[1:]), n_params, round(features_s, 3),
               round(epoch_s, 3), round(len(split["train"]) / train_s, 1), len(info["history"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TrainConfig()
    parser.add_argument("--data", default=SMALL, help="data SPEC (default %(default)s)")
    parser.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS),
                        help="students to time (default: all of the registry)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per student, the first a warm-up (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="(default %(default)s)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default %(default)s)")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", default="bench_train.json", help="output JSON (default %(default)s)")
    args = parser.parse_args()

    import torch

    device = resolve_device(args.device)
    trials = load_trials(args.data, progress=False)
    split = make_split(trials, "by-image", seed=0)
    base = for_data(TrainConfig(epochs=args.epochs, patience=args.epochs + 1, batch_size=args.batch_size,
                                device=args.device, amp=args.amp, threads=args.threads), trials)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for student in args.students:
            rows.append(bench_student(trials, split, base, student, trials.soft_labels, Path(tmp)))
            print(f"  {student}: {rows[-1].epoch_s:.2f} s/epoch", file=sys.stderr, flush=True)

    where = f"{describe(device)}{', AMP' if args.amp and device.type == 'cuda' else ''}, torch {torch.__version__}, " \
            f"{torch.get_num_threads()} CPU threads"
    print(f"{trials.source}: {len(split['train'])} training trials, {len(split['val'])} validation; "
          f"batch {args.batch_size}; {where}")
    print("| student | input (ch, rows, cols) | parameters | features s | s / epoch | train trials / s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.student} | {r.input_shape} | {r.parameters:,} | {r.features_s:.2f} | {r.epoch_s:.2f} | "
              f"{r.train_trials_per_s:,.0f} |")
    Path(args.json).write_text(json.dumps({
        "command": " ".join(sys.argv), "data": trials.source, "device": describe(device), "amp": args.amp,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "n_train": len(split["train"]), "n_val": len(split["val"]), "batch_size": args.batch_size,
        "rows": [asdict(r) for r in rows]}, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
