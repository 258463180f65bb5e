#!/usr/bin/env python
"""Rebuild the zoo's zero-shot embedding model, ``models/zero_shot/model.onnx``.

EEGNet trained with the CLIP loss (``bci-train fit --objective embedding``) on the semantic phantom
(2 subjects, 40 classes, 32 channels), tested by **k-way zero-shot retrieval** on the 10 classes held
out of training (split ``by-class``), with the retrieval oracle on the same trials; exported with its
embedding card (``docs/open-vocabulary.md`` has the recipe). Writes the ONNX file, ``card.json``,
``report.md`` and ``metrics.json`` in ``models/zero_shot/``. Not shipped by ``pip install``.

    python tools/build_zero_shot_model.py       # about half a minute of training on 2 CPU cores
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_zoo import MODELS_DIR, write_entry  # noqa: E402

NAME = "zero_shot"
SPEC = "phantom:subjects=2,classes=40,channels=32,semantic=1"
RECIPE = ("--objective", "embedding", "--student", "eegnet", "--epochs", "40")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=SPEC, help="data spec (default %(default)s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="the zoo's folder (default %(default)s)")
    args = parser.parse_args()
    from offline_training.cli import main as bci_train

    model = args.out / NAME / "model.onnx"
    with tempfile.TemporaryDirectory(prefix="zero-shot-") as tmp:
        run = Path(tmp) / "run"
        if bci_train(["fit", "--data", args.data, *RECIPE, "--threads", str(args.threads), "--out", str(run)]) != 0:
            return 1
        model.parent.mkdir(parents=True, exist_ok=True)
        if bci_train(["export", str(run), "--out", str(model)]) != 0:
            return 1
        print(f"wrote {model} and {write_entry(NAME, model, run, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
