"""Run the numerical tests under every OpenBLAS kernel this CPU can run, one pytest process per kernel.

Float32 results differ in their last bits between OpenBLAS kernels (an Intel CPU with AVX-512 gets
``SkylakeX``, an AMD EPYC ``Zen``), so a suite that is green on one machine can be red on another. Each
kernel is forced with ``OPENBLAS_CORETYPE`` for one child process; the child first reports, through
threadpoolctl, which kernel really runs, so a kernel that did not take is a failure, not a silent pass.

    python tools/check_blas_kernels.py                 # Haswell, Zen (+ SkylakeX where the CPU has AVX-512)
    python tools/check_blas_kernels.py --kernels SkylakeX --json runs/blas_kernels.json

Prints one line per kernel and writes a JSON summary; exits 1 if any kernel fails. CI runs it after
``make test`` (``.ci/run``). Nothing here times anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The tests whose assertions compare numbers computed through numpy/scipy's BLAS: features (batch,
# rolling, ERP), preprocessing (chunked = whole), the live loop's parity, phantom determinism, the
# signal contract, retrieval ranks, students' live = offline probabilities, resume and export parity.
NUMERICAL_TESTS = (
    "tests/test_features.py",
    "tests/test_preprocessing.py",
    "tests/test_artifacts.py",
    "tests/test_loop.py",
    "tests/test_ring_buffer.py",
    "tests/test_signal_contract.py",
    "tests/test_phantom.py",
    "tests/test_phantom_semantic.py",
    "tests/test_phantom_sessions.py",
    "tests/test_zero_shot.py",
    "tests/test_gallery.py",
    "tests/test_live_retrieval.py",
    "tests/test_teacher.py",
    "tests/test_students.py",
    "tests/test_training.py",
)

_PROBE = (
    "import json, numpy as np; from threadpoolctl import threadpool_info; np.ones((64, 64)) @ np.ones((64, 64));"
    "print(json.dumps([i for i in threadpool_info() if i.get('internal_api') == 'openblas']))"
)


# OpenBLAS runs some core types on another's kernel (its Zen target uses the Haswell kernels).
_SAME_KERNEL = {"zen": "haswell"}


def available_kernels() -> list[str]:
    """The kernels this CPU can run: every x86-64 with AVX2 runs Haswell and Zen; SkylakeX needs AVX-512."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    kernels = ["Haswell", "Zen"] if " avx2" in flags else ["Sandybridge"]
    if " avx512f" in flags:
        kernels.append("SkylakeX")
    return kernels


def kernel_env(kernel: str) -> dict[str, str]:
    env = dict(os.environ, OPENBLAS_CORETYPE=kernel, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    env.pop("OPENBLAS_L2_SIZE", None)  # set with CORETYPE on some machines; it belongs to the machine's own kernel
    return env


def running_kernel(kernel: str) -> str:
    """What threadpoolctl reports numpy's OpenBLAS runs under ``OPENBLAS_CORETYPE=kernel``."""
    out = subprocess.run([sys.executable, "-c", _PROBE], env=kernel_env(kernel), capture_output=True,
                         text=True, check=True).stdout
    libs = json.loads(out.strip().splitlines()[-1])
    return ",".join(sorted({str(lib.get("architecture")) for lib in libs})) or "no OpenBLAS"


def run_tests(kernel: str, tests: list[str]) -> tuple[int, str]:
    """(pytest's exit code, its closing line) for ``tests`` under ``kernel``."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    proc = subprocess.run(cmd, cwd=ROOT, env=kernel_env(kernel), capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0:
        sys.stdout.write("\n".join(line for line in lines if line.startswith(("FAILED", "ERROR"))) + "\n")
    return proc.returncode, lines[-1] if lines else proc.stderr.strip()[-200:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernels", help="comma-separated kernels (default: all this CPU runs)")
    parser.add_argument("--tests", nargs="*", default=list(NUMERICAL_TESTS), help="test files (default: the numerical ones)")
    parser.add_argument("--json", type=Path, default=ROOT / "runs" / "blas_kernels.json", help="summary file")
    args = parser.parse_args(argv)
    kernels = args.kernels.split(",") if args.kernels else available_kernels()
    if not kernels:
        print(f"check_blas_kernels: no OpenBLAS kernels to force on {platform.machine()}; nothing to check")
        return 0
    results, failed = [], False
    for kernel in kernels:
        running = running_kernel(kernel)
        code, closing = run_tests(kernel, args.tests)
        took = running.lower() == _SAME_KERNEL.get(kernel.lower(), kernel.lower())
        ok = code == 0 and took
        failed |= not ok
        print(f"{kernel:<12} running {running:<12} {'ok  ' if ok else 'FAIL'} {closing}"
              + ("" if took else f"  (asked for {kernel}, OpenBLAS runs {running})"))
        results.append({"kernel": kernel, "running": running, "pytest_exit": code, "summary": closing, "ok": ok})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpu": platform.processor() or platform.machine(), "tests": args.tests,
                                     "results": results}, indent=2) + "\n")
    print(f"check_blas_kernels: {sum(r['ok'] for r in results)} of {len(results)} kernels green; {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
