"""Training a student: data, model, loop — read top to bottom (the config is
:mod:`offline_training.training.config`, checkpoints :mod:`offline_training.training.checkpoints`).

What is learnt is an :class:`~offline_training.training.objectives.Objective` (class probabilities with the
KD loss of Hinton et al. 2015, or an image embedding with InfoNCE): the loop never branches on it.
Checkpoints are safetensors plus JSON; a run resumes where it stopped. Training runs on ``config.device``
(:mod:`offline_training.training.device`).

:func:`fit` is a page of named steps: :func:`prepare_inputs` (features once, normalised, in memory or
memory-mapped), :func:`build_model`, :func:`build_optimizer`, then per epoch :func:`train_epoch`, the
objective's ``validate``, :func:`record_epoch` (history, best model, checkpoint) and :class:`EpochProgress`.
It returns a :class:`FitResult` (the best model in memory and its run info) and writes no ``run.json``:
the run that called it writes that once (:mod:`offline_training.experiments.run`).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bci_stream.contract.features import Features
from bci_stream.contract.trials import Trials
from bci_stream.live.scoring import unresolved_markers
from offline_training.students import build_student, student_args, student_spec
from offline_training.training.checkpoints import (
    checkpoint_identity,
    has_checkpoint,
    load_checkpoint,
    load_model_tensors,
    save_checkpoint,
    save_model,
)
from offline_training.training.config import TrainConfig, feature_kind
from offline_training.training.device import amp_dtype, autocast, describe, resolve_device, to_device
from offline_training.training.objectives import Objective, kd_loss, objective_for, tempered  # noqa: F401

log = logging.getLogger(__name__)


def features_of(config: TrainConfig) -> Features:
    """The :class:`Features` transform of a config (what the card will carry), checked against the student."""
    kind = feature_kind(config)
    spec = student_spec(config.student)
    if kind != spec.features:
        raise ValueError(f"student {config.student!r} reads {spec.features} features, not {kind}")
    if spec.mode == "complex" and config.spectrogram.mode != "complex":
        raise ValueError(f"student {config.student!r} needs complex spectrograms; build the config with "
                         f"TrainConfig.for_student({config.student!r}) or --spectrogram-mode complex")
    if spec.mode is None and kind == "spectrogram" and config.spectrogram.mode == "complex":
        raise ValueError(f"student {config.student!r} reads magnitudes; use --student phase for complex spectrograms")
    return Features(kind, config.spectrogram, config.erp)


def jitter_columns(config: TrainConfig) -> int:
    """Onset jitter in feature columns (erp output samples) each side of the window (0: none)."""
    if config.jitter <= 0:
        return 0
    if feature_kind(config) != "erp":
        raise ValueError("onset-jitter augmentation needs erp features (a shift by whole output samples)")
    return int(round(config.jitter * config.erp.out_sfreq()))


@dataclass
class Normaliser:
    """Feature standardisation fitted on the training split. ``mean``/``std``: ``(n_channels, n_rows)``
    for features, ``(n_channels,)`` for raw EEG (old LSTM runs)."""

    mean: np.ndarray
    std: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.ndim == 4:  # (n, ch, f, t)
            return (x - self.mean[None, :, :, None]) / self.std[None, :, :, None]
        return (x - self.mean[None, :, None]) / self.std[None, :, None]


# --- data ---------------------------------------------------------------------------------------
def input_crop(config: TrainConfig, jitter: bool = True) -> tuple[int, int]:
    """Samples of each trial the inputs are computed from: the crop, widened by the onset jitter."""
    pad = jitter_columns(config) * config.erp.decimate if jitter else 0
    return config.crop_start - pad, config.crop_stop + pad


def input_shape(trials: Trials, config: TrainConfig, jitter: bool = True) -> tuple[int, ...]:
    """The shape :func:`model_inputs` returns, without computing anything."""
    start, stop = input_crop(config, jitter)
    if feature_kind(config) == "raw":
        return (len(trials), trials.eeg.shape[1], stop - start)
    return (len(trials), *features_of(config).shape(trials.eeg.shape[1], stop - start))


def model_inputs(trials: Trials, config: TrainConfig, jitter: bool = True, out: np.ndarray | None = None) -> np.ndarray:
    """What the student sees, before normalisation: :func:`features_of` of each trial's crop,
    ``(n, ch, rows, columns)`` (with ``2 * jitter_columns`` extra columns when ``jitter`` and the config's
    onset jitter are on: the training inputs); old LSTM runs: ``(n, ch, crop)`` raw EEG. Computed in
    batches of 256 trials (bounded memory) into ``out`` when given (e.g. a memory-mapped array of
    :func:`input_shape`)."""
    kind = feature_kind(config)
    features = None if kind == "raw" else features_of(config)
    rate = config.erp.sfreq if kind == "erp" else config.spectrogram.sfreq
    if trials.sfreq != rate:
        raise ValueError(f"trials at {trials.sfreq:g} Hz but {kind} features set for {rate:g} Hz")
    start, stop = input_crop(config, jitter)
    if start < 0 or stop > trials.eeg.shape[-1]:
        raise ValueError(f"crop {start}:{stop} (with the onset jitter) beyond trials of {trials.eeg.shape[-1]} samples")
    eeg = trials.eeg[..., start:stop]
    if out is None:
        out = np.empty(input_shape(trials, config, jitter), np.float32)
    for i in range(0, len(trials), 256):
        if features is None:
            out[i : i + 256] = eeg[i : i + 256]
        else:
            features.batch(eeg[i : i + 256], out=out[i : i + 256])
    return out


def fit_normaliser(x: np.ndarray) -> Normaliser:
    axes = (0, 3) if x.ndim == 4 else (0, 2)
    mean = x.mean(axis=axes, dtype=np.float64).astype(np.float32)
    std = x.std(axis=axes, dtype=np.float64).astype(np.float32) + 1e-6
    return Normaliser(mean, std)


def fit_normaliser_chunked(x: np.ndarray, rows: np.ndarray, chunk: int = 256) -> Normaliser:
    """:func:`fit_normaliser` of ``x[rows]`` without holding ``x[rows]`` in memory (memory-mapped inputs):
    two passes in float64, the mean then the spread around it."""
    axes = (0, 3) if x.ndim == 4 else (0, 2)
    shape = (1, x.shape[1], x.shape[2], 1) if x.ndim == 4 else (1, x.shape[1], 1)
    count = len(rows) * x.shape[-1]
    total = sum(x[rows[i : i + chunk]].sum(axis=axes, dtype=np.float64) for i in range(0, len(rows), chunk))
    mean = total / count
    spread = sum(((x[rows[i : i + chunk]] - mean.reshape(shape)) ** 2).sum(axis=axes)
                 for i in range(0, len(rows), chunk))
    return Normaliser(mean.astype(np.float32), np.sqrt(spread / count).astype(np.float32) + 1e-6)


# --- the steps of fit -----------------------------------------------------------------------------
@dataclass
class Prepared:
    """One fit's inputs, computed once: ``x`` normalised float32 ``(n, ch, rows, columns)`` (in memory, or
    memory-mapped from ``path``), the normaliser fitted on the training split, and the onset-jitter
    padding ``pad`` each side of the ``width`` columns the exported model sees."""

    x: np.ndarray
    normaliser: Normaliser
    pad: int
    width: int
    path: Path | None = None

    def release(self) -> None:
        """Drop the memory-mapped file, if any (it is only a cache of this fit's inputs)."""
        if self.path is not None:
            self.x = np.empty((0,), np.float32)  # closes the map before the file goes
            self.path.unlink(missing_ok=True)
            self.path = None


def prepare_inputs(trials: Trials, split: dict[str, np.ndarray], config: TrainConfig, run_dir: Path,
                   inputs: np.ndarray | None = None) -> Prepared:
    """The features of every trial, once (or ``inputs`` given by the caller, left untouched), normalised
    with statistics of the training split. Above ``config.memmap_mb`` they live in ``run_dir/inputs.npy``,
    memory-mapped; normalisation runs in chunks of 256 trials either way."""
    shape = input_shape(trials, config) if inputs is None else inputs.shape
    path = run_dir / "inputs.npy" if np.prod(shape) * 4 > config.memmap_mb * 2**20 else None
    if path is not None:
        log.info("inputs %s (%.0f MiB) memory-mapped from %s", shape, np.prod(shape) * 4 / 2**20, path)
    if inputs is None:  # ours: computed straight into their home, normalised in place
        out = None if path is None else np.lib.format.open_memmap(path, "w+", np.float32, shape)
        x = out = model_inputs(trials, config, out=out)
    else:  # the caller's (shared between runs): a normalised copy
        x = inputs
        out = np.empty(shape, np.float32) if path is None else np.lib.format.open_memmap(path, "w+", np.float32, shape)
    normaliser = fit_normaliser(x[split["train"]]) if path is None else fit_normaliser_chunked(x, split["train"])
    for i in range(0, len(x), 256):
        out[i : i + 256] = normaliser(x[i : i + 256])
    pad = jitter_columns(config)
    return Prepared(out, normaliser, pad, shape[-1] - 2 * pad, path)


def build_model(config: TrainConfig, data: Prepared, objective: Objective, n_outputs: int,
                device: torch.device) -> tuple[torch.nn.Module, dict]:
    """The student for ``data``'s shape on ``device`` (initialised on the CPU from the seeded RNG, so the same
    seed starts from the same weights on every device), wrapped as ``objective`` trains it, and its
    constructor arguments. ``n_outputs``: classes, or the embedding dimension."""
    if feature_kind(config) == "raw":
        args = dict(n_chans=data.x.shape[1], n_outputs=n_outputs, **config.student_kwargs)
    else:
        args = student_args(config.student, (data.x.shape[1], data.x.shape[2], data.width), n_outputs,
                            config.erp.out_sfreq(), **config.student_kwargs)
    return objective.wrap(build_student(config.student, **args)).to(device), args


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW with a cosine decay over ``config.epochs``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)


def shifted(x: torch.Tensor, starts: np.ndarray, width: int) -> torch.Tensor:
    """Onset-jitter augmentation: example ``i`` of ``x`` ``(batch, ch, rows, columns)`` cut to the
    ``width`` columns from ``starts[i]``."""
    index = torch.from_numpy(starts).to(x.device)[:, None] + torch.arange(width, device=x.device)[None]  # (batch, width)
    index = index[:, None, None, :].expand(x.shape[0], x.shape[1], x.shape[2], width)
    return torch.gather(x, 3, index)


def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                data: Prepared, objective: Objective, config: TrainConfig, epoch: int, train_idx: np.ndarray,
                device: torch.device, amp: torch.dtype | None = None) -> float:
    """One pass over the training trials in a seeded order (``[seed, epoch]``: a resumed run sees the same
    batches); returns ``(mean training loss over the steps taken, batches skipped)``. What the loss reads
    per trial lives on ``device`` (``objective.bind``); batches travel there one at a time.

    A batch whose loss is not finite is skipped (no step: one NaN must not poison the weights, as
    mixed-precision training's scaler does for overflowing gradients); the caller stops the run when
    most of an epoch's batches are skipped (:func:`check_finite`). That check reads the loss on the host,
    one sync per step."""
    model.train()
    order = np.random.default_rng([config.seed, epoch]).permutation(train_idx)
    shifts = np.random.default_rng([config.seed, epoch, 1]).integers(0, 2 * data.pad + 1, size=len(order))
    total, taken, skipped = 0.0, 0, 0
    for i in range(0, len(order), config.batch_size):
        rows = order[i : i + config.batch_size]
        x = to_device(data.x[rows], device)
        if data.pad:
            x = shifted(x, shifts[i : i + config.batch_size], data.width)
        with autocast(device, amp):
            loss = objective.loss(model, x, torch.from_numpy(rows).to(device))
        value = float(loss.detach())
        if not math.isfinite(value):
            skipped += 1
            continue
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total, taken = total + value * len(rows), taken + len(rows)
    return (total / taken if taken else math.nan), skipped


def _distinct_markers(trials: Trials) -> tuple[list[str], list[int]]:
    """Each stimulus marker (image id) once, with its label."""
    ids, first = np.unique(trials.image_ids, return_index=True)
    return list(ids), [int(v) for v in trials.labels[first]]


# --- predictions and the best model ------------------------------------------------------------
@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` for normalised inputs ``x``, computed in float32 on the
    model's device."""
    model.eval()
    device = next(model.parameters()).device
    out = [F.softmax(model(to_device(x[i : i + batch_size], device)), 1).cpu().numpy()
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class BestModel:
    """The weights of the best epoch so far, kept in memory (CPU copies) beside ``model.safetensors``, so
    the run tests and exports the best model without reading it back from disk."""

    def __init__(self) -> None:
        self.weights: dict[str, torch.Tensor] | None = None

    def keep(self, run_dir: Path, model: torch.nn.Module, normaliser: Normaliser) -> None:
        save_model(run_dir, model, normaliser.mean, normaliser.std)
        self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def restore(self, run_dir: Path, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` on the CPU in eval mode with the best weights (a resumed run whose best epoch came
        before this session: read once from its ``model.safetensors``)."""
        weights = self.weights if self.weights is not None else load_model_tensors(run_dir)[0]
        model = model.cpu()
        model.load_state_dict(weights)
        return model.eval()


def record_epoch(run_dir: Path, state: dict, row: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler, data: Prepared,
                 best: BestModel) -> None:
    """Append ``row`` to the history, keep the model when its validation loss is the best so far, and write
    the checkpoint (every epoch: a run cut off anywhere resumes from its last finished epoch)."""
    state["history"].append(row)
    state["epoch"] = row["epoch"]
    if row["val_loss"] < state["best_val_loss"]:
        state.update(best_val_loss=row["val_loss"], best_epoch=row["epoch"], stale=0)
        best.keep(run_dir, model, data.normaliser)
    else:
        state["stale"] += 1
    save_checkpoint(run_dir, model, optimizer, scheduler, state, scaler)


def run_identity(trials: Trials, config: TrainConfig, student_args: dict) -> dict:
    """What a checkpoint must share with the run that resumes it: the data, the student and its shape."""
    return {"data": trials.source, "student": config.student, "objective": config.objective,
            "student_args": json.loads(json.dumps(student_args, default=str))}


def check_same_run(run_dir: Path, identity: dict) -> None:
    """``--resume`` continues the same run: refuse, in one line, a checkpoint of other data or another
    student (torch would say ``size mismatch`` over many lines)."""
    saved = checkpoint_identity(run_dir)
    if saved is None:
        return  # a checkpoint from before identities were saved: load_checkpoint still says a mismatch
    for key, what in (("data", "on other data"), ("student", "of another student"),
                      ("objective", "of another objective"), ("student_args", "of another model shape")):
        if saved.get(key) != identity[key]:
            had, has = saved.get(key), identity[key]
            if key == "student_args":
                diff = sorted(k for k in set(had or {}) | set(has) if (had or {}).get(k) != has.get(k))
                had = ", ".join(f"{k}={(had or {}).get(k)}" for k in diff)
                has = ", ".join(f"{k}={has.get(k)}" for k in diff)
            raise ValueError(f"--resume: {run_dir} holds a run {what} ({had}; this run: {has}); "
                             "resume it with the options it was started with, or give a new --out")


class TrainingDiverged(RuntimeError):
    """The training or validation loss went NaN or infinite: the run stops (no model is worth saving)."""


def check_finite(row: dict, config: TrainConfig, n_batches: int = 1) -> None:
    """Stop with one line when an epoch's loss is not finite or more than half of its ``n_batches`` were
    skipped for a non-finite loss (the data were finite: the loader drops trials with NaN or infinite
    samples, so the cause is the optimisation). A few skipped batches are logged and the run goes on."""
    skipped = row.get("skipped_batches", 0)
    bad = [f"{k} {row[k]}" for k in ("train_loss", "val_loss") if not math.isfinite(row[k])]
    if 2 * skipped > n_batches:
        bad.append(f"{skipped} of {n_batches} batches with a non-finite loss")
    if bad:
        raise TrainingDiverged(f"training diverged at epoch {row['epoch']}: {' and '.join(bad)}; lower the "
                               f"learning rate (--lr, now {config.lr:g}), or check the data for extreme values")
    if skipped:
        log.warning("epoch %d: %d of %d batches skipped (loss not finite)", row["epoch"], skipped, n_batches)


class EpochProgress:
    """Training progress: a tqdm bar on a terminal; in a log file or a pipe one plain line per epoch (no
    carriage returns), e.g. ``seed+KD epoch 3/40: train_loss 1.234 val_loss 1.456 val_top1 0.312 (2.1 s)``."""

    def __init__(self, desc: str, done: int, total: int, enabled: bool = True, stream: TextIO | None = None):
        self.desc, self.total, self.enabled = desc, total, enabled
        self.stream = stream if stream is not None else sys.stderr
        tty = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.bar = tqdm(desc=desc, unit="epoch", initial=done, total=total, file=self.stream) if tty else None

    def epoch(self, row: dict) -> None:
        figures = {k: f"{row[k]:.3f}" for k in ("train_loss", "val_loss", "val_top1")}
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(figures)
        elif self.enabled:
            print(f"{self.desc} epoch {row['epoch']}/{self.total}: " + " ".join(f"{k} {v}" for k, v in figures.items())
                  + f" ({row['seconds']:.1f} s)", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def load_model(run_dir: str | Path) -> tuple[torch.nn.Module, Normaliser, TrainConfig, dict]:
    """Rebuild the trained student from a run folder: (model in eval mode on the CPU, normaliser, config, run info)."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    config = TrainConfig.from_dict(info["train_config"])
    weights, mean, std = load_model_tensors(run_dir)
    model = objective_for(config).wrap(build_student(config.student, **info["student_args"]))
    model.load_state_dict(weights)
    model.eval()
    return model, Normaliser(mean, std), config, info


@dataclass
class FitResult:
    """What :func:`fit` hands back: the best model (CPU, eval mode), its normaliser, config and objective,
    and the run info (history, best epoch, student arguments, device, data) that ``run.json`` will hold."""

    model: torch.nn.Module
    normaliser: Normaliser
    config: TrainConfig
    info: dict
    objective: Objective

    def inputs(self, trials: Trials) -> np.ndarray:
        """The normalised float32 inputs the model reads for ``trials`` (the exported window, no jitter)."""
        return self.normaliser(model_inputs(trials, self.config, jitter=False)).astype(np.float32)


@dataclass
class _Training:
    """One fit's moving parts (model, optimizer, schedule, scaler, state, best model)."""

    model: torch.nn.Module
    args: dict
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    state: dict
    best: BestModel


def _start(trials: Trials, split: dict, config: TrainConfig, run_dir: Path, objective: Objective, data: Prepared,
           labels: np.ndarray, device: torch.device, amp, resume: bool) -> _Training:
    """Model, optimizer and schedule, or all of them as the last checkpoint left them; a student with a
    closed-form read-out (CCANet) starts from it as "epoch 0"."""
    model, args = build_model(config, data, objective, objective.n_outputs(trials), device)
    optimizer, scheduler = build_optimizer(model, config)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    identity = run_identity(trials, config, args)
    state = {"epoch": 0, "best_val_loss": float("inf"), "best_epoch": -1, "stale": 0, "history": [],
             "identity": identity}
    t = _Training(model, args, optimizer, scheduler, scaler, state, BestModel())
    if resume and has_checkpoint(run_dir):
        check_same_run(run_dir, identity)
        t.state = load_checkpoint(run_dir, model, optimizer, scheduler, scaler)
        t.state.setdefault("identity", identity)
        log.info("resumed %s at epoch %d", run_dir, t.state["epoch"])
    elif objective.init_readout(model, data, labels, split["train"]) and len(split["val"]):
        # the closed-form read-out is "epoch 0": epochs only replace it when they validate better
        init_loss, _ = objective.validate(model, data, labels, split["val"])
        if np.isfinite(init_loss):
            t.state.update(best_val_loss=init_loss, best_epoch=0)
            t.best.keep(run_dir, model, data.normaliser)
    return t


def _epochs(t: _Training, data: Prepared, objective: Objective, config: TrainConfig, split: dict, labels: np.ndarray,
            run_dir: Path, device: torch.device, amp, bar: EpochProgress, stop_after: int | None,
            on_epoch: Callable[[dict], None] | None) -> None:
    """Train until ``config.epochs``, early stopping (``patience``) or ``stop_after``."""
    for epoch in range(t.state["epoch"], config.epochs):
        t0 = time.perf_counter()
        train_loss, skipped = train_epoch(t.model, t.optimizer, t.scaler, data, objective, config, epoch,
                                          split["train"], device, amp)
        train_seconds = time.perf_counter() - t0
        t.scheduler.step()
        val_loss, val_acc = objective.validate(t.model, data, labels, split["val"])
        row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "val_top1": val_acc,
               "seconds": round(time.perf_counter() - t0, 4), "train_seconds": round(train_seconds, 4),
               "skipped_batches": skipped}
        check_finite(row, config, n_batches=-(-len(split["train"]) // config.batch_size))
        record_epoch(run_dir, t.state, row, t.model, t.optimizer, t.scheduler, t.scaler, data, t.best)
        if on_epoch is not None:
            on_epoch(dict(row))
        bar.epoch(row)
        if stop_after is not None and t.state["epoch"] >= stop_after:
            break
        if t.state["stale"] >= config.patience:
            log.info("early stop at epoch %d (best %d)", epoch + 1, t.state["best_epoch"])
            break


def run_record(trials: Trials, config: TrainConfig, args: dict, state: dict, device: torch.device, amp) -> dict:
    """The run info of a finished fit (what ``run.json`` holds, before the run adds its own entries)."""
    return {
        "train_config": config.to_dict(),
        "student_args": args,
        "best_epoch": state["best_epoch"],
        "epochs_run": state["epoch"],
        "history": state["history"],
        "device": describe(device),
        "amp": None if amp is None else str(amp).removeprefix("torch."),
        "data": trials.source,
        "sfreq": trials.sfreq,
        "ch_names": list(trials.ch_names),
        "class_ids": list(trials.class_ids),
        "class_names": list(trials.class_names),
        "tmin": trials.tmin,
        "signal_unit": trials.unit,
        "marker_classes": unresolved_markers(*_distinct_markers(trials), list(trials.class_ids), list(trials.class_names)),
        "preprocessing": trials.preprocessing,
        "artifacts": trials.artifacts,
    }


# --- the loop -----------------------------------------------------------------------------------
def fit(trials: Trials, split: dict[str, np.ndarray], config: TrainConfig, run_dir: str | Path,
        soft_labels: np.ndarray | None = None, train_labels: np.ndarray | None = None,
        resume: bool = False, progress: bool = True, inputs: np.ndarray | None = None,
        stop_after: int | None = None, on_epoch: Callable[[dict], None] | None = None,
        targets: np.ndarray | None = None, objective: Objective | None = None) -> FitResult:
    """Train a student; ``run_dir`` gets its checkpoints and ``model.safetensors`` (no ``run.json``: the
    caller writes it once, with :attr:`FitResult.info`).

    Parameters
    ----------
    trials : all trials; ``split`` indexes them (``train``, ``val``, ``test``).
    objective : what is learnt (default :func:`~offline_training.training.objectives.objective_for` of
        ``config`` with ``soft_labels`` / ``targets``).
    soft_labels : teacher probabilities ``(n_trials, n_classes)``; required when ``config.kd``.
    targets : embedding objective: the image embedding of each trial ``(n_trials, dim)``, unit rows.
    train_labels : labels to train on (default ``trials.labels``; the shuffled control passes a permutation).
    resume : continue from ``run_dir``'s last checkpoint.
    progress : show progress (a bar on a terminal, one line per epoch otherwise; :class:`EpochProgress`).
    inputs : precomputed :func:`model_inputs` (to share between runs on the same data).
    stop_after : stop once this many epochs are done, as an interruption would.
    on_epoch : called after each epoch (once its checkpoint is written) with that epoch's history row.
    """
    # 1. check inputs; device, threads, seed
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    objective = objective or objective_for(config, soft_labels, targets)
    objective.check(trials)
    device = resolve_device(config.device)
    amp = amp_dtype(device, config.amp)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    labels = trials.labels if train_labels is None else train_labels
    # 2. features once, normalised
    data = prepare_inputs(trials, split, config, run_dir, inputs)
    try:
        # 3. model, optimizer and schedule (or the last checkpoint's); 4. epochs
        t = _start(trials, split, config, run_dir, objective, data, labels, device, amp, resume)
        objective.bind(trials, labels, device)
        bar = EpochProgress(f"{config.student}{objective.tag()}", t.state["epoch"], config.epochs, progress)
        _epochs(t, data, objective, config, split, labels, run_dir, device, amp, bar, stop_after, on_epoch)
        bar.close()
    finally:
        data.release()
    if t.state["best_epoch"] < 0:  # e.g. resumed past the last epoch of a run that never saved a model
        raise RuntimeError(f"{run_dir}: no epoch produced a model (epochs run: {t.state['epoch']}); "
                           "train again without --resume, or with more --epochs")
    # 5. the best model, in memory
    info = run_record(trials, config, t.args, t.state, device, amp)
    return FitResult(t.best.restore(run_dir, t.model), data.normaliser, config, info, objective)
