#!/usr/bin/env python
"""A PNG of the running demo viewer, under a virtual X server (needs `xvfb-run`: apt-get install
xvfb xauth libxcb-icccm4 libxcb-keysyms1).

    python tools/screenshot.py [--out docs/viewer.png] [--seconds 12] [--mode event|continuous]
    python tools/screenshot.py --model emb.onnx --gallery-index gallery.safetensors --out docs/viewer_retrieval.png
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "docs" / "viewer.png"))
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--renderer", default="gallery")
    parser.add_argument("--mode", default="event", choices=["event", "continuous"])
    parser.add_argument("--model", default=None, help="the model (default: the demo model)")
    parser.add_argument("--gallery-index", default=None, help="an embedding model's gallery index")
    args = parser.parse_args()
    if shutil.which("xvfb-run") is None:
        sys.exit("xvfb-run not found: apt-get install -y xvfb xauth libxcb-icccm4 libxcb-keysyms1")
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, "-m", "bci_stream.demo",
           "--seconds", str(args.seconds), "--screenshot", str(out), "--renderer", args.renderer, "--mode", args.mode]
    cmd += ["--model", str(Path(args.model).resolve())] if args.model else []
    cmd += ["--gallery-index", str(Path(args.gallery_index).resolve())] if args.gallery_index else []
    env = {k: v for k, v in __import__("os").environ.items() if k != "QT_QPA_PLATFORM"}
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if result.returncode != 0 or not out.exists():
        sys.exit(f"screenshot failed (exit {result.returncode})")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
