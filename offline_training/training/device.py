"""Where training runs: ``auto`` | ``cpu`` | ``cuda``, mixed precision, batches moved to the device.

``auto`` picks CUDA only when torch sees a GPU *and* a tiny operation on it works (a CUDA build on a
machine without a usable driver reports ``is_available()`` in some set-ups and fails on first use).
"""

from __future__ import annotations

import contextlib
import logging
from functools import lru_cache

import numpy as np
import torch

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


@lru_cache(maxsize=1)
def cuda_works() -> bool:
    """True when a CUDA device is visible and a tiny operation on it returns the right answer."""
    if not torch.cuda.is_available():
        return False
    try:
        return float((torch.ones(1, device="cuda") + 1).item()) == 2.0
    except RuntimeError as err:  # driver/runtime mismatch, no memory, a device in a bad state
        log.warning("CUDA reports a device but a test operation failed (%s); training on the CPU", err)
        return False


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name``: "cpu", "cuda" (or "cuda:N"), or "auto" (CUDA when :func:`cuda_works`)."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "auto":
        return torch.device("cuda") if cuda_works() else torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not cuda_works():
            raise ValueError(f"--device {name} asked for but no working CUDA device was found "
                             f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use --device auto or cpu")
        return torch.device(name)
    raise ValueError(f"unknown device {name!r}; choose from {', '.join(DEVICES)} (or cuda:N)")


def describe(device: torch.device) -> str:
    """The device for run.json and reports, naming the card on CUDA, e.g. ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def trial_device(gpus_per_trial: float) -> str:
    """The device of a sweep trial: "cuda" when Ray reserved GPU share for it, else "cpu" (never "auto":
    a trial that reserved no GPU must not take one that Ray gave to another trial)."""
    return "cuda" if gpus_per_trial > 0 else "cpu"


def amp_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype: bf16 on CUDA cards that support it, else fp16; None on the CPU or without ``amp``
    (CPU bf16 autocast is not used: measured faster for one student and slower for another, see the
    README's benchmark section)."""
    if not amp:
        return None
    if device.type != "cuda":
        log.warning("--amp is ignored on the CPU (training in float32)")
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed-precision autocast for the forward pass and loss (a no-op when ``dtype`` is None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def to_device(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """A batch ``(batch, ...)`` as a tensor on ``device``: through pinned memory and an asynchronous copy on
    CUDA (the GPU keeps computing the previous step meanwhile), as it is on the CPU."""
    tensor = torch.from_numpy(np.ascontiguousarray(batch))
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor
