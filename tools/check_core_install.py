#!/usr/bin/env python
"""Install the core alone (the live decoder: numpy, scipy, pylsl, onnxruntime, threadpoolctl, Pillow)
into a fresh virtual environment, measure it, and decode the phantom with the shipped demo model.

    python tools/check_core_install.py [--json core_install.json] [--keep DIR]

Prints the venv's size (MB), the packages installed, and the live run's closing line; exits 1 when
the install fails, the size exceeds --max-mb or the live run makes no decision.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--keep", help="build the venv here and keep it (default: a temporary folder)")
    parser.add_argument("--max-mb", type=float, default=600.0, help="largest acceptable venv, MB")
    parser.add_argument("--seconds", type=float, default=6.0, help="live decoding time")
    args = parser.parse_args(argv)

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bci-stream-core-"))
    venv = base / "venv"
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    install = subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT)], capture_output=True, text=True)
    if install.returncode != 0:
        print(install.stderr[-2000:], file=sys.stderr)
        return 1
    seconds_install = time.monotonic() - t0
    packages = subprocess.run([str(py), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                              check=True).stdout
    names = sorted(p["name"].lower() for p in json.loads(packages))
    size = folder_mb(venv)

    # the core venv alone: a phantom stream and the live decoder, in one LSL session of their own
    bin_ = venv / "bin"
    session = f"core-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in ("LSLAPICFG", "PYTHONPATH")}
    cwd = base  # not the source tree: the installed package must stand alone
    simulate = subprocess.Popen([str(bin_ / "bci-stream"), "--lsl-session", session, "simulate", "--counter",
                                 "--seconds", str(args.seconds + 8)], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        live = subprocess.run([str(bin_ / "bci-stream"), "--lsl-session", session, "live", "--model", "demo",
                               "--headless", "--mode", "event", "--seconds", str(args.seconds)],
                              cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    finally:
        simulate.terminate()
        simulate.wait(timeout=10)
    closing = [line for line in live.stdout.splitlines() if "decisions," in line]
    info = subprocess.run([str(bin_ / "bci-stream"), "info", "demo"], cwd=cwd, env=env, capture_output=True, text=True)
    heavy = sorted(set(names) & {"torch", "pyqt6", "mne", "diffusers", "ray", "onnxruntime-gpu"})
    figures = {"venv_mb": round(size, 1), "install_seconds": round(seconds_install, 1), "packages": names,
               "heavy_packages": heavy, "live_rc": live.returncode, "live_summary": closing[-1] if closing else None, "info_rc": info.returncode}
    print(f"core venv: {size:.0f} MB ({len(names)} packages, installed in {seconds_install:.0f} s): {', '.join(names)}")
    print(f"bci-stream live (core only, demo model, phantom): rc {live.returncode}: "
          f"{closing[-1] if closing else live.stderr.strip()[-500:]}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    print(f"bci-stream info demo (core only): rc {info.returncode}")
    ok = live.returncode == 0 and info.returncode == 0 and closing and not closing[-1].startswith("0 decisions") and size <= args.max_mb \
        and not heavy
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
