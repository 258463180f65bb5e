"""Every GPU figure the README leaves empty, in one prepared run of under 8 minutes, into one JSON.

Run it the next time a GPU machine is lent (the README's GPU rows are filled from its output):

    python tools/gpu_check.py --json gpu_check.json           # on the GPU machine
    python tools/gpu_check.py --smoke --json smoke.json       # anywhere: tiny versions, CPU, checks the plumbing

Steps, each a child process with its own time limit (a step that fails or runs out of time is recorded
with its reason and the next one runs):

1. ``render_text``      SD-Turbo's architecture (random weights), 512², 1 step, TAESD decoder: pictures/s
2. ``render_unclip``    SD 2.1 unCLIP's architecture (random weights), the embedding renderer: pictures/s
3. ``train_fp32``       CUDA training, seconds per epoch of every student (``tools/bench_train.py``)
4. ``train_amp``        the same with ``--amp`` (bf16 autocast)
5. ``onnx_cuda``        ONNX Runtime latency of the demo student with the CUDA provider, beside the CPU one

The lent GPU machine has torch, transformers, onnx and onnxruntime (a CPU build) but not diffusers,
braindecode, mne or pylsl: carry their wheels (the device tool's README: ``pip download --no-deps
--only-binary=:all: --python-version 3.12 ...``) for diffusers, braindecode, mne, pylsl, open_clip_torch,
ftfy, skorch, torchinfo, docstring-inheritance. A step whose import fails is recorded with that line.
onnxruntime-gpu (255 MB) is over the 64 MiB a call carries, so step 5 records why CUDA was not measured.

Without a CUDA device (and without ``--smoke``) every step is recorded as skipped, with the reason. The
JSON holds the machine (GPU name, driver, torch, onnxruntime), each step's command, exit code, wall time
and figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRAIN_DATA = "phantom:subjects=2,classes=40,channels=128"  # the paper's shape: 128 ch at 1 kHz, 40 classes
SMOKE_TRAIN_DATA = "phantom:subjects=1,classes=4,channels=8,images=4"


@dataclass(frozen=True)
class Step:
    """One figure: ``args`` run as ``python ROOT/<script> ... --json OUT`` within ``limit_s`` seconds."""

    name: str
    script: str
    args: tuple[str, ...]
    limit_s: float


def steps(smoke: bool) -> list[Step]:
    """The steps (the GPU ones, or tiny CPU ones with ``smoke``); limits add up to < 8 minutes."""
    if smoke:
        return [
            Step("render_text", "tools/bench_render.py", ("--random", "tiny", "--size", "64", "--repeats", "2",
                                                          "--device", "cpu"), 120),
            Step("render_unclip", "tools/bench_render.py", ("--random", "unclip-tiny", "--size", "64", "--repeats", "2",
                                                            "--embedding-steps", "1", "--text-baseline", "none",
                                                            "--device", "cpu"), 120),
            Step("train_fp32", "tools/bench_train.py", ("--data", SMOKE_TRAIN_DATA, "--epochs", "2", "--students",
                                                        "shallow", "--device", "cpu"), 120),
            Step("train_amp", "tools/bench_train.py", ("--data", SMOKE_TRAIN_DATA, "--epochs", "2", "--students",
                                                       "shallow", "--device", "cpu", "--amp"), 120),
            Step("onnx_cuda", "tools/gpu_check.py", ("--onnx-latency", "--repeats", "50"), 60),
        ]
    return [
        Step("render_text", "tools/bench_render.py", ("--random", "sd-turbo", "--tiny-vae", "--size", "512",
                                                      "--repeats", "30", "--device", "cuda"), 100),
        Step("render_unclip", "tools/bench_render.py", ("--random", "unclip", "--repeats", "10", "--text-baseline",
                                                        "none", "--device", "cuda"), 120),
        Step("train_fp32", "tools/bench_train.py", ("--data", TRAIN_DATA, "--epochs", "3", "--device", "cuda"), 100),
        Step("train_amp", "tools/bench_train.py", ("--data", TRAIN_DATA, "--epochs", "3", "--device", "cuda", "--amp"), 100),
        Step("onnx_cuda", "tools/gpu_check.py", ("--onnx-latency", "--repeats", "2000"), 40),
    ]


def machine() -> dict:
    """GPU name, driver and library versions (what is known without a GPU too)."""
    info: dict = {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name()
            info["torch_cuda"] = torch.version.cuda
    except ImportError:
        info["cuda"] = False
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
        info["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        pass
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True) if shutil.which("nvidia-smi") else None
    if smi is not None and smi.returncode == 0:
        info["nvidia_smi"] = smi.stdout.strip()
    return info


def run_step(step: Step, out_dir: Path) -> dict:
    """Run one step in a child process; its figures come from the JSON it writes."""
    out = out_dir / f"{step.name}.json"
    cmd = [sys.executable, str(ROOT / step.script), *step.args, "--json", str(out)]
    record: dict = {"command": " ".join(["python", step.script, *step.args]), "limit_s": step.limit_s}
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=step.limit_s)
        record["exit_code"] = proc.returncode
        if proc.returncode != 0:
            record["error"] = (proc.stderr.strip().splitlines() or ["(no message)"])[-1][:300]
    except subprocess.TimeoutExpired:
        record["exit_code"], record["error"] = None, f"ran past its {step.limit_s:g} s limit"
    record["wall_s"] = round(time.monotonic() - start, 1)
    if out.is_file():
        record["figures"] = json.loads(out.read_text())
    return record


def onnx_latency(repeats: int, json_path: Path | None) -> int:
    """The demo student's batch-1 latency in ONNX Runtime with the CUDA provider and the CPU one."""
    import onnxruntime as ort

    from bci_stream.resources import DEMO_MODEL

    result: dict = {"model": DEMO_MODEL.name, "repeats": repeats, "available": ort.get_available_providers()}
    for name, providers in (("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"]), ("cpu", ["CPUExecutionProvider"])):
        if providers[0] not in result["available"]:
            result[name] = {"skipped": f"{providers[0]} not in this onnxruntime build (onnxruntime {ort.__version__}); "
                                       "install onnxruntime-gpu"}
            continue
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(DEMO_MODEL), options, providers=providers)
        if session.get_providers()[0] != providers[0]:
            result[name] = {"skipped": f"{providers[0]} listed but did not load (fell back to {session.get_providers()})"}
            continue
        feed = session.get_inputs()[0]
        shape = [1 if not isinstance(d, int) else d for d in feed.shape]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        for _ in range(20):
            session.run(None, {feed.name: x})
        times = np.empty(repeats)
        for i in range(repeats):
            t = time.perf_counter()
            session.run(None, {feed.name: x})
            times[i] = (time.perf_counter() - t) * 1e3
        result[name] = {"p50_ms": round(float(np.percentile(times, 50)), 3), "p99_ms": round(float(np.percentile(times, 99)), 3)}
        print(f"onnxruntime {name}: p50 {result[name]['p50_ms']} ms, p99 {result[name]['p99_ms']} ms")
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path("gpu_check.json"), help="the one output file")
    parser.add_argument("--smoke", action="store_true", help="tiny CPU versions of every step (checks the script)")
    parser.add_argument("--only", nargs="*", help="run only these steps")
    parser.add_argument("--onnx-latency", action="store_true", help=argparse.SUPPRESS)  # step 5's child process
    parser.add_argument("--repeats", type=int, default=2000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.onnx_latency:
        return onnx_latency(args.repeats, args.json)

    report = {"machine": machine(), "smoke": args.smoke, "steps": {}}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for step in steps(args.smoke):
            if args.only and step.name not in args.only:
                continue
            if not args.smoke and not report["machine"]["cuda"]:
                report["steps"][step.name] = {"skipped": "no CUDA device (torch.cuda.is_available() is False)"}
            else:
                print(f"gpu_check: {step.name} (at most {step.limit_s:g} s) ...", flush=True)
                report["steps"][step.name] = run_step(step, Path(tmp))
            record = report["steps"][step.name]
            print(f"gpu_check: {step.name}: " + (record.get("skipped") or record.get("error") or f"done in {record['wall_s']} s"),
                  flush=True)
            args.json.write_text(json.dumps(report, indent=1))  # a step at a time: a killed run keeps what it had
    report["wall_s"] = round(time.monotonic() - start, 1)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"gpu_check: wrote {args.json} ({report['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
