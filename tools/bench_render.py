#!/usr/bin/env python
"""Renderer throughput: images/s and latency of the diffusion renderer's pipeline call.

    python tools/bench_render.py --model PATH_OR_HUB_ID      # a real pipeline (local folder / cache)
    python tools/bench_render.py --random sd-turbo            # SD-Turbo's architecture, random weights (GPU)
    python tools/bench_render.py --random tiny                # CPU smoke figure

Target (ARCHITECTURE.md): >= 30 images/s at 512 x 512, 1 step, on one H100.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--random", choices=["tiny", "sd-turbo"], default=None)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1, help="prompts per pipeline call")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (GPU)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if args.random == "sd-turbo":
        from bci_stream.render.random_pipeline import sd_turbo_sized_pipeline

        pipe = sd_turbo_sized_pipeline(device)
    else:
        from bci_stream.render.diffusion import load_text2image

        source = args.model
        if args.random == "tiny" or source is None:
            from bci_stream.render.random_pipeline import build_tiny_pipeline

            source = str(build_tiny_pipeline(Path(tempfile.mkdtemp()) / "tiny"))
        pipe, device = load_text2image(source, device)
    pipe.set_progress_bar_config(disable=True)
    if args.compile:
        pipe.unet = torch.compile(pipe.unet, mode="max-autotune", fullgraph=True)
    prompts = ["an image of a sorrel"] * args.batch

    def once():
        with torch.inference_mode():
            pipe(prompts, num_inference_steps=args.steps, guidance_scale=0.0, height=args.size, width=args.size,
                 output_type="np")
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        once()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    times = np.array(times)
    result = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "pipeline": args.random or args.model,
              "size": args.size, "steps": args.steps, "batch": args.batch,
              "latency_ms_p50": float(np.median(times) * 1e3), "latency_ms_p95": float(np.percentile(times, 95) * 1e3),
              "images_per_s": float(args.batch / np.median(times))}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
