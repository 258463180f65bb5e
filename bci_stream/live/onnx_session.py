"""ONNX Runtime session with the execution provider chosen at run time, and the one it really got."""

from __future__ import annotations

import ctypes.util
import logging
import os
from pathlib import Path

import onnxruntime as ort

from bci_stream.contract.model_card import check_onnx_file

log = logging.getLogger(__name__)


def cuda_present() -> bool:
    """True when an NVIDIA driver is visible (a device node or libcuda), so CUDA is worth asking for."""
    return os.path.exists("/dev/nvidiactl") or ctypes.util.find_library("cuda") is not None


def choose_providers(preference: str = "auto") -> list[str]:
    """Providers to ask for: ``"cpu"``, ``"cuda"`` (CUDA then CPU), or ``"auto"`` (CUDA only where a
    GPU is present and the CUDA provider is built in; onnxruntime-gpu without a GPU would only log
    errors and fall back)."""
    available = ort.get_available_providers()
    if preference not in ("auto", "cpu", "cuda"):
        raise ValueError(f"providers must be auto, cpu or cuda; got {preference!r}")
    wants_cuda = preference == "cuda" or (preference == "auto" and cuda_present())
    if wants_cuda and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(path: str | Path, preference: str = "auto", threads: int = 1) -> ort.InferenceSession:
    """An inference session for ``path``; logs the provider actually in use (``session.get_providers()[0]``).

    ``threads``: intra-op threads; 1 gives the lowest single-example latency here and leaves the
    second core to acquisition.

    Options chosen by ``tools/bench_onnx.py`` (every variant interleaved in one run, demo student):
    ``ORT_ENABLE_ALL`` (its NCHWc layout transforms are what make the convolutions fast here;
    EXTENDED and BASIC ran about a quarter slower); the CPU arena, memory pattern, denormal
    flushing and intra-op spinning made no difference at one thread, so they stay at ONNX
    Runtime's defaults. The decoder binds its input and output once (IO binding, see
    :class:`bci_stream.live.decoder.Decoder`) instead of building feeds and outputs every call.
    """
    path = check_onnx_file(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    asked = choose_providers(preference)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=asked)
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0]
        raise ValueError(f"{path}: not a loadable ONNX model (corrupt or unreadable; ONNX Runtime says: {first})") \
            from None
    got = session.get_providers()[0]
    if got != asked[0]:
        log.warning("asked ONNX Runtime for %s, got %s", asked[0], got)
    log.info("ONNX Runtime provider: %s", got)
    return session
