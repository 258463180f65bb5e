"""tools/gpu_check.py: the prepared GPU run records every step, and skips each with its reason without CUDA."""

import json
import sys
from pathlib import Path

import pytest
from conftest import load_tool

ROOT = Path(__file__).resolve().parents[1]


def test_without_cuda_every_gpu_step_is_recorded_as_skipped_with_the_reason(tmp_path, monkeypatch):
    gpu_check = load_tool("gpu_check")
    monkeypatch.setattr(gpu_check, "machine", lambda: {"cuda": False})
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--json", str(out)]) == 0
    report = json.loads(out.read_text())
    names = {s.name for s in gpu_check.steps(smoke=False)}
    assert names == {"render_text", "render_unclip", "train_fp32", "train_amp", "onnx_cuda"}
    assert set(report["steps"]) == names
    assert all("no CUDA device" in r["skipped"] for r in report["steps"].values())
    assert sum(s.limit_s for s in gpu_check.steps(smoke=False)) < 8 * 60  # the run fits its 8 minutes


def test_onnx_step_measures_the_cpu_provider_and_says_why_cuda_was_not(tmp_path):
    gpu_check = load_tool("gpu_check")
    out = tmp_path / "onnx.json"
    assert gpu_check.onnx_latency(repeats=20, json_path=out) == 0
    result = json.loads(out.read_text())
    assert result["cpu"]["p50_ms"] > 0
    if "CUDAExecutionProvider" not in result["available"]:
        assert "onnxruntime" in result["cuda"]["skipped"]


@pytest.mark.skipif(sys.platform != "linux", reason="OpenBLAS kernels are forced through /proc/cpuinfo's flags")
def test_blas_kernel_check_reports_the_kernel_that_really_runs(tmp_path):
    check = load_tool("check_blas_kernels")
    kernels = check.available_kernels()
    if not kernels:
        pytest.skip("not an x86-64 CPU: no OpenBLAS kernel to force")
    assert check.running_kernel(kernels[0]).lower() == kernels[0].lower()
    out = tmp_path / "kernels.json"
    code = check.main(["--kernels", kernels[0], "--tests", "tests/test_ring_buffer.py", "--json", str(out)])
    assert code == 0
    assert json.loads(out.read_text())["results"][0]["ok"] is True
