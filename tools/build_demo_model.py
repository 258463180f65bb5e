#!/usr/bin/env python
"""Rebuild the shipped demo model, ``bci_stream/data/demo/model.onnx``.

A KD student trained on the phantom headset (128 channels at 1 kHz, the 40 EEG-ImageNet classes,
6 subjects x 50 images), evaluated by image against the phantom's oracle, exported with its model
card. Also writes ``bci_stream/data/demo/report.md``, ``metrics.json`` and ``confusion.png``.

    python tools/build_demo_model.py            # about 5 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bci_stream.phantom import Phantom  # noqa: E402
from bci_stream.resources import DEMO_MODEL_DIR  # noqa: E402
from offline_training.datasets import load_trials  # noqa: E402
from offline_training.datasets.phantom import phantom_config  # noqa: E402
from offline_training.distill import TrainConfig  # noqa: E402
from offline_training.export import export_onnx  # noqa: E402
from offline_training.pipeline import train_and_test  # noqa: E402

SPEC = "phantom:subjects=6,classes=40,channels=128,images=50,seed=0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=SPEC)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=str(DEMO_MODEL_DIR))
    args = parser.parse_args()

    t0 = time.perf_counter()
    trials = load_trials(args.data)
    print(trials.summary())
    options = {k: v for k, v in (item.split("=") for item in args.data.split(":", 1)[1].split(","))}
    oracle = Phantom(phantom_config(**options)).oracle_probabilities
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as run:
        metrics = train_and_test(trials, "by-image", TrainConfig(epochs=args.epochs, patience=8), run,
                                 trials.soft_labels, "phantom class-similarity (no images; stand-in for a CLIP teacher)",
                                 oracle=oracle, name="CNN + KD (demo student)")
        export_onnx(run, out / "model.onnx")
        for name in ("report.md", "metrics.json", "confusion.png"):
            shutil.copy(Path(run) / name, out / name)
    metrics.pop("oracle", None)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(f"by-image test: top-1 {metrics['top1']:.3f} top-5 {metrics['top5']:.3f} "
          f"(oracle top-1 {metrics['oracle_top1']:.3f}); {time.perf_counter() - t0:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
