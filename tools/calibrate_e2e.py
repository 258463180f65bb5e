"""The calibrate end-to-end figure: from nothing to a live personal decoder with the listening phantom.

1. A generic model (the phantom's subject 1, training session) stands for "the decoder running now".
2. ``bci-stream simulate --listen`` streams subject 2 watching the screen (SAMPLE_INDEX counter on).
3. ``bci-stream calibrate --images DIR --trials 400 --model generic.onnx`` is timed: present + record,
   train in a child process, hot-swap, then 200 held-out stimuli scored live.

Prints the calibrate command's report and its wall time; writes OUT/e2e.json. On 2 shared cores:
the README's "A personal decoder in one sitting".

    PYTHONPATH=$PWD python tools/calibrate_e2e.py --out /tmp/calib-e2e
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

from PIL import Image, ImageDraw


def make_images(root: Path, classes: list[str], per_class: int) -> Path:
    for k, cls in enumerate(classes):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.new("RGB", (128, 128), ((37 * k) % 256, (23 * i) % 256, 140))
            ImageDraw.Draw(img).ellipse([10 + 3 * k, 10 + 2 * i, 118, 118], fill=(250, 250, 250))
            img.save(root / cls / f"{cls}_{i}.jpg")
    return root


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/calib-e2e")
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--test-trials", type=int, default=200)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--sfreq", type=float, default=500.0)
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--images", type=int, default=10, help="images per class")
    ap.add_argument("--present-args", default="--fixation 0.1 --duration 0.3 --isi 0.15 --isi-jitter 0.05")
    ap.add_argument("--train-args", default="--epochs 25 --patience 6 --no-controls --no-baselines --threads 2")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    py = [sys.executable, "-m"]
    session = f"calib-{uuid.uuid4().hex[:6]}"
    phantom = f"channels={args.channels},sfreq={args.sfreq:g},classes={args.classes},images={args.images}"

    from bci_stream.sources.phantom import Phantom
    from offline_training.datasets.phantom import phantom_config

    classes = Phantom(phantom_config(**dict(kv.split("=") for kv in phantom.split(",")))).class_ids
    images = make_images(out / "images", list(classes), args.images)

    # 1. the generic model (not part of the sitting: a lab has one from before)
    generic = out / "generic" / "model.onnx"
    if not generic.exists():
        subprocess.run([*py, "offline_training.cli", "run", "--data", f"phantom:{phantom},subjects=1", "--out",
                        str(out / "generic"), "--epochs", "8", "--no-controls", "--no-baselines", "--threads", "2"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    # 2. the listening phantom (subject 2)
    stim, eeg = f"stim-{session}", f"eeg-{session}"
    sim = subprocess.Popen([*py, "bci_stream.cli", "--lsl-session", session, "simulate", "--channels", str(args.channels),
                            "--sfreq", f"{args.sfreq:g}", "--classes", str(args.classes), "--subject", "2",
                            "--counter", "--name", eeg, "--listen", stim], env=env, stdout=subprocess.DEVNULL)
    try:
        # 3. the sitting, timed
        t0 = time.monotonic()
        code = subprocess.call([*py, "bci_stream.cli", "--lsl-session", session, "calibrate", "--images", str(images),
                                "--out", str(out / "calib"), "--trials", str(args.trials), "--test-trials",
                                str(args.test_trials), "--model", str(generic), "--stream", eeg, "--name", stim,
                                "--present-args", args.present_args, "--train-args", args.train_args], env=env)
        wall = time.monotonic() - t0
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    if code != 0:
        return code
    report = json.loads((out / "calib" / "calibration.json").read_text())
    report["wall_seconds"] = round(wall, 1)
    report["cores"] = os.cpu_count()
    (out / "e2e.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"calibrate wall time {wall:.0f} s on {os.cpu_count()} cores; within CI: {report['within_ci']}; "
          f"lost samples {report['lost_samples']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
