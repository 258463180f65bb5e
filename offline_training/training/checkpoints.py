"""A run folder's checkpoint files: safetensors for tensors, JSON for everything else.

::

    | file | what |
    |---|---|
    | ``checkpoint.safetensors`` | the last epoch's weights |
    | ``optimizer.safetensors`` | AdamW moments and the RNG states (CPU, and CUDA when training there) |
    | ``train_state.json`` | epoch, best epoch, history, the LR scheduler's ``state_dict`` (and AMP's grad scaler) |
    | ``model.safetensors`` | the best weights (``model.*``) and the normalisation (``norm.mean``, ``norm.std``) |

A resumed run restores all of it, so it continues exactly where it stopped (the scheduler from its own
state, never by stepping it again: that would warn "lr_scheduler.step() before optimizer.step()").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from bci_stream.io.safe_write import write_text, write_with

CHECKPOINT, OPTIMIZER, STATE, MODEL = "checkpoint.safetensors", "optimizer.safetensors", "train_state.json", "model.safetensors"


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def _save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """``tensors`` to a safetensors file, through :mod:`bci_stream.io.safe_write` (a full disk is one line)."""
    write_with(path, lambda tmp: save_file(tensors, tmp))


def has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / STATE).exists()


def checkpoint_identity(run_dir: Path) -> dict | None:
    """The data and student the checkpoint in ``run_dir`` was trained with (None: not recorded)."""
    try:
        return json.loads((run_dir / STATE).read_text()).get("identity")
    except (OSError, ValueError):
        return None


def save_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, state: dict,
                    scaler: torch.amp.GradScaler | None = None) -> None:
    """Write the three checkpoint files (``state``: JSON-able epoch, best epoch, history...)."""
    _save(_cpu(model.state_dict()), run_dir / CHECKPOINT)
    tensors = {"rng.torch": torch.get_rng_state()}
    if any(p.is_cuda for p in model.parameters()):
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    for i, s in optimizer.state_dict()["state"].items():
        for key, value in s.items():
            tensors[f"{i}.{key}"] = torch.as_tensor(value)
    _save(_cpu(tensors), run_dir / OPTIMIZER)
    extra = {"scheduler": scheduler.state_dict()}
    if scaler is not None and scaler.is_enabled():
        extra["grad_scaler"] = scaler.state_dict()
    write_text(run_dir / STATE, json.dumps({**state, **extra}))


def load_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler,
                    scaler: torch.amp.GradScaler | None = None) -> dict:
    """Restore weights, AdamW moments, RNG states, scheduler (and grad scaler) from ``run_dir``; returns the
    training state saved with them (epoch, best epoch, history)."""
    state = json.loads((run_dir / STATE).read_text())
    try:
        model.load_state_dict(load_file(run_dir / CHECKPOINT))
    except RuntimeError as err:  # torch lists every mismatching tensor over many lines
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), str(err))
        raise ValueError(f"--resume: the checkpoint in {run_dir} is of another model ({first[:160]}); resume "
                         "with the data and options it was started with, or give a new --out") from None
    tensors = load_file(run_dir / OPTIMIZER)
    torch.set_rng_state(tensors.pop("rng.torch"))
    cuda_rng = tensors.pop("rng.cuda", None)
    if cuda_rng is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda_rng)
    sd = optimizer.state_dict()
    moments: dict[int, dict] = {}
    for name, value in tensors.items():
        i, key = name.split(".", 1)
        moments.setdefault(int(i), {})[key] = value
    sd["state"] = moments
    optimizer.load_state_dict(sd)  # moves the moments to the parameters' device
    if "scheduler" not in state:
        raise ValueError(f"--resume: the checkpoint in {run_dir} has no scheduler state (a pre-release bci-train "
                         "wrote it); start a new --out")
    _restore_scheduler(optimizer, scheduler, state.pop("scheduler"))
    scaler_state = state.pop("grad_scaler", None)
    if scaler is not None and scaler.is_enabled() and scaler_state is not None:
        scaler.load_state_dict(scaler_state)
    return state


def _restore_scheduler(optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                       saved: dict) -> None:
    """The scheduler from its saved state, and the optimizer's learning rates from the scheduler's last
    ones (the optimizer's ``param_groups`` were rebuilt fresh, at the initial rate)."""
    scheduler.load_state_dict(saved)
    for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
        group["lr"] = lr


def save_model(run_dir: Path, model: torch.nn.Module, mean: np.ndarray, std: np.ndarray) -> None:
    """The best weights and the normalisation, ``model.safetensors``."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors["norm.mean"] = torch.from_numpy(mean)
    tensors["norm.std"] = torch.from_numpy(std)
    _save(_cpu(tensors), run_dir / MODEL)


def load_model_tensors(run_dir: Path) -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    """``model.safetensors``: (the student's state dict, normalisation mean, std), on the CPU."""
    tensors = load_file(run_dir / MODEL)
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    return weights, tensors["norm.mean"].numpy(), tensors["norm.std"].numpy()
