#!/usr/bin/env python
"""Rebuild the real-brain demo: one Muse faces-vs-houses recording shipped in the package, and a model
trained on the OTHER recordings of that subject (leave-one-recording-out), ``bci_stream/data/real/``.

The recording is eeg-notebooks' N170 subject 1, session 1, ``data_2017-09-13-15.45.08.csv`` (BSD-3-Clause,
its LICENSE copied beside it), copied byte for byte from ``../shared/data/real``. The model is trained
with ``bci-train fit`` on subject 1's five other recordings with the recipe below, exported with its card
(report and metrics beside it). ``python -m bci_stream.demo --real`` replays the shipped recording and
decodes it live in event mode, scored against the true stimuli: trials the model never saw. The zoo's
``models/faces_houses/`` (card, report, metrics) is written too.

    python tools/build_real_demo_model.py          # under a minute on 2 CPU cores
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_zoo import write_entry  # noqa: E402

from bci_stream.resources import REAL_DEMO_DIR, REAL_DEMO_EVENTS, REAL_DEMO_MODEL, REAL_DEMO_RECORDING  # noqa: E402

SOURCE = ROOT.parent / "shared/data/real/eegnb_muse"
SUBJECT = SOURCE / "N170/subject1/session1"
# The faces-vs-houses recipe of the README's "Real EEG" table: 0-0.6 s after the picture, band-passed
# 0.5-20 Hz causally (as live), training epochs over 100 µV peak-to-peak (blinks) left out of training.
RECIPE = ("--window", "0", "0.6", "--bandpass", "0.5", "20", "--reject", "100", "--no-kd")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=SUBJECT, help="the subject's recordings (default %(default)s)")
    parser.add_argument("--student", default=None, help="student (default: bci-train fit's default)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: bci-train fit's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from offline_training.cli import main as bci_train

    recordings = sorted(args.source.glob("*.csv"))
    shipped = args.source / REAL_DEMO_RECORDING.name
    if shipped not in recordings:
        print(f"{shipped} not found; --source must hold eeg-notebooks' N170 subject 1 recordings", file=sys.stderr)
        return 2
    REAL_DEMO_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped, REAL_DEMO_RECORDING)
    shutil.copyfile(SOURCE / "LICENSE", REAL_DEMO_DIR / "LICENSE")
    others = [r for r in recordings if r != shipped]
    spec = "csv:" + ";".join(map(str, others)) + f",event_id={REAL_DEMO_EVENTS},tmin=-0.1,tmax=0.6"
    options = [*RECIPE, "--threads", str(args.threads)]
    options += ["--student", args.student] if args.student else []
    options += ["--epochs", str(args.epochs)] if args.epochs else []
    with tempfile.TemporaryDirectory(prefix="real-demo-") as tmp:
        run = Path(tmp) / "run"
        if bci_train(["fit", "--data", spec, "--out", str(run), *options]) != 0:
            return 1
        if bci_train(["export", str(run), "--out", str(REAL_DEMO_MODEL)]) != 0:
            return 1
        for name in ("report.md", "metrics.json", "confusion.png"):
            if (run / name).is_file():
                shutil.copyfile(run / name, REAL_DEMO_DIR / name)
    write_entry("faces_houses", REAL_DEMO_MODEL, REAL_DEMO_DIR)
    print(f"wrote {REAL_DEMO_MODEL} (trained on {len(others)} recordings) and {REAL_DEMO_RECORDING.name} "
          f"(the held-out one) in {REAL_DEMO_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
