"""Knowledge-distillation training: config, data, model, loop, checkpoint — read top to bottom.

Loss (Hinton et al. 2015; Ferrante et al. 2023)::

    L = alpha * CE(student, hard) + (1 - alpha) * T^2 * KL(teacher_T || student_T)

with ``teacher_T = softmax(log p_teacher / T)``. ``kd=False`` trains on hard labels only (the
plain-CNN baseline). Checkpoints are safetensors plus JSON; a run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from bci_stream.features import SpectrogramConfig, spectrogram_batch
from bci_stream.trials import Trials
from bci_stream.truth import unresolved_markers
from offline_training.students import build_student

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; defaults follow the seed lineage (1 kHz, samples 20-460, STFT nperseg 40).

    Attributes
    ----------
    student : "cnn" (spectrogram CNN) or "lstm" (raw EEG).
    kd : distil from the teacher's soft labels (False: hard labels only).
    alpha : weight of the hard-label cross-entropy.
    temperature : KD temperature T.
    crop_start, crop_stop : samples of each trial used (from trial start), e.g. 20:460.
    spectrogram : STFT parameters (CNN input).
    epochs, batch_size, lr, weight_decay : AdamW schedule (cosine decay over ``epochs``).
    patience : epochs without validation improvement before stopping early.
    seed : seeds torch, numpy and batch order.
    threads : torch CPU threads (None: torch's default).
    student_kwargs : extra constructor arguments (e.g. ``{"width": 32}``).
    """

    student: str = "cnn"
    kd: bool = True
    alpha: float = 0.5
    temperature: float = 4.0
    crop_start: int = 20
    crop_stop: int = 460
    spectrogram: SpectrogramConfig = field(default_factory=SpectrogramConfig)
    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    patience: int = 8
    seed: int = 0
    threads: int | None = None
    student_kwargs: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        data["spectrogram"] = SpectrogramConfig(**data.get("spectrogram", {}))
        return cls(**data)


@dataclass
class Normaliser:
    """Feature standardisation fitted on the training split. ``mean``/``std``: ``(n_channels, n_freqs)``
    for spectrograms, ``(n_channels,)`` for raw EEG."""

    mean: np.ndarray
    std: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.ndim == 4:  # (n, ch, f, t)
            return (x - self.mean[None, :, :, None]) / self.std[None, :, :, None]
        return (x - self.mean[None, :, None]) / self.std[None, :, None]


# --- data ---------------------------------------------------------------------------------------
def model_inputs(trials: Trials, config: TrainConfig) -> np.ndarray:
    """What the student sees, before normalisation: CNN ``(n, ch, freqs, frames)`` STFT magnitudes
    of the crop; LSTM ``(n, ch, crop)`` raw EEG."""
    if trials.sfreq != config.spectrogram.sfreq:
        raise ValueError(f"trials at {trials.sfreq:g} Hz but spectrogram set for {config.spectrogram.sfreq:g} Hz")
    if config.crop_stop > trials.eeg.shape[-1]:
        raise ValueError(f"crop {config.crop_start}:{config.crop_stop} beyond trials of {trials.eeg.shape[-1]} samples")
    eeg = trials.eeg[..., config.crop_start : config.crop_stop]
    if config.student == "lstm":
        return np.ascontiguousarray(eeg, dtype=np.float32)
    out = np.empty((len(trials), *spectrogram_batch(eeg[:1], config.spectrogram).shape[1:]), np.float32)
    for start in range(0, len(trials), 256):  # bounded memory
        out[start : start + 256] = spectrogram_batch(eeg[start : start + 256], config.spectrogram)
    return out


def fit_normaliser(x: np.ndarray) -> Normaliser:
    axes = (0, 3) if x.ndim == 4 else (0, 2)
    mean = x.mean(axis=axes, dtype=np.float64).astype(np.float32)
    std = x.std(axis=axes, dtype=np.float64).astype(np.float32) + 1e-6
    return Normaliser(mean, std)


def tempered(probabilities: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(log p / T)``: teacher probabilities at temperature T."""
    return F.softmax(torch.log(probabilities.clamp_min(1e-8)) / temperature, dim=1)


def kd_loss(logits: torch.Tensor, hard: torch.Tensor, soft: torch.Tensor | None, alpha: float, temperature: float) -> torch.Tensor:
    """``alpha * CE + (1 - alpha) * T^2 * KL(teacher_T || student_T)`` (CE alone when ``soft`` is None)."""
    ce = F.cross_entropy(logits, hard)
    if soft is None:
        return ce
    kl = F.kl_div(F.log_softmax(logits / temperature, dim=1), tempered(soft, temperature), reduction="batchmean")
    return alpha * ce + (1 - alpha) * temperature**2 * kl


# --- checkpoints ----------------------------------------------------------------------------------
def save_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """``checkpoint.safetensors`` (weights), ``optimizer.safetensors`` (AdamW moments), ``train_state.json``."""
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, run_dir / "checkpoint.safetensors")
    tensors = {"rng.torch": torch.get_rng_state()}
    for i, s in optimizer.state_dict()["state"].items():
        for key, value in s.items():
            tensors[f"{i}.{key}"] = torch.as_tensor(value).contiguous()
    save_file(tensors, run_dir / "optimizer.safetensors")
    (run_dir / "train_state.json").write_text(json.dumps(state))


def load_optimizer_state(optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Restore AdamW moments and torch's RNG (dropout) so a resumed run continues exactly."""
    tensors = load_file(path)
    torch.set_rng_state(tensors.pop("rng.torch"))
    sd = optimizer.state_dict()
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        i, key = name.split(".", 1)
        state.setdefault(int(i), {})[key] = value
    sd["state"] = state
    optimizer.load_state_dict(sd)


def save_model(run_dir: Path, model: torch.nn.Module, normaliser: Normaliser) -> None:
    """The best weights and the normalisation, ``model.safetensors``."""
    tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    tensors["norm.mean"] = torch.from_numpy(normaliser.mean)
    tensors["norm.std"] = torch.from_numpy(normaliser.std)
    save_file(tensors, run_dir / "model.safetensors")


def load_model(run_dir: str | Path) -> tuple[torch.nn.Module, Normaliser, TrainConfig, dict]:
    """Rebuild the trained student from a run folder: (model in eval mode, normaliser, config, run info)."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    config = TrainConfig.from_dict(info["train_config"])
    tensors = load_file(run_dir / "model.safetensors")
    model = build_student(config.student, **info["student_args"])
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    model.eval()
    return model, Normaliser(tensors["norm.mean"].numpy(), tensors["norm.std"].numpy()), config, info


def _distinct_markers(trials: Trials) -> tuple[list[str], list[int]]:
    """Each stimulus marker (image id) once, with its label."""
    ids, first = np.unique(trials.image_ids, return_index=True)
    return list(ids), [int(v) for v in trials.labels[first]]


# --- the loop -----------------------------------------------------------------------------------
@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` for normalised inputs ``x``."""
    model.eval()
    out = [F.softmax(model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))), 1).numpy()
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def fit(trials: Trials, split: dict[str, np.ndarray], config: TrainConfig, run_dir: str | Path,
        soft_labels: np.ndarray | None = None, train_labels: np.ndarray | None = None,
        resume: bool = False, progress: bool = True, inputs: np.ndarray | None = None,
        stop_after: int | None = None, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train a student and write ``run_dir`` (checkpoints, best model, ``run.json``).

    Parameters
    ----------
    trials : all trials; ``split`` indexes them (``train``, ``val``, ``test``).
    soft_labels : teacher probabilities ``(n_trials, n_classes)``; required when ``config.kd``.
    train_labels : labels to train on (default ``trials.labels``; the shuffled control passes a permutation).
    resume : continue from ``run_dir``'s last checkpoint.
    inputs : precomputed :func:`model_inputs` (to share between runs on the same data).
    stop_after : stop once this many epochs are done, as an interruption would (the schedule
        still spans ``config.epochs``; ``resume`` continues from there).
    on_epoch : called after each epoch (once its checkpoint is written) with that epoch's history row
        (``epoch``, ``train_loss``, ``val_loss``, ``val_top1``); a sweep reports it to its scheduler.

    Returns the run info written to ``run.json`` (history, best epoch, student arguments).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.kd and soft_labels is None:
        raise ValueError("KD training needs teacher soft labels (run `bci-train teacher`, or kd=False)")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    labels = trials.labels if train_labels is None else train_labels

    x = model_inputs(trials, config) if inputs is None else inputs
    normaliser = fit_normaliser(x[split["train"]])
    x = normaliser(x).astype(np.float32)
    if config.student == "lstm":
        student_args = dict(n_chans=x.shape[1], n_outputs=trials.n_classes, **config.student_kwargs)
    else:
        student_args = dict(n_chans=x.shape[1], n_freqs=x.shape[2], n_frames=x.shape[3],
                            n_outputs=trials.n_classes, **config.student_kwargs)
    model = build_student(config.student, **student_args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)

    state = {"epoch": 0, "best_val_loss": float("inf"), "best_epoch": -1, "stale": 0, "history": []}
    if resume and (run_dir / "train_state.json").exists():
        state = json.loads((run_dir / "train_state.json").read_text())
        model.load_state_dict(load_file(run_dir / "checkpoint.safetensors"))
        load_optimizer_state(optimizer, run_dir / "optimizer.safetensors")
        for _ in range(state["epoch"]):
            scheduler.step()
        log.info("resumed %s at epoch %d", run_dir, state["epoch"])

    xt = torch.from_numpy(x)
    yt = torch.from_numpy(labels.astype(np.int64))
    st = None if soft_labels is None else torch.from_numpy(soft_labels.astype(np.float32))
    train_idx, val_idx = split["train"], split["val"]
    bar = tqdm(range(state["epoch"], config.epochs), desc=f"{config.student}{'+KD' if config.kd else ''}",
               unit="epoch", disable=not progress, initial=state["epoch"], total=config.epochs)
    for epoch in bar:
        model.train()
        order = np.random.default_rng([config.seed, epoch]).permutation(train_idx)  # resumable
        total = 0.0
        for i in range(0, len(order), config.batch_size):
            idx = torch.from_numpy(order[i : i + config.batch_size])
            logits = model(xt[idx])
            loss = kd_loss(logits, yt[idx], st[idx] if config.kd else None, config.alpha, config.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        scheduler.step()
        val_probs = predict(model, x[val_idx])
        val_loss = float(F.nll_loss(torch.log(torch.from_numpy(val_probs).clamp_min(1e-8)), yt[val_idx]))
        val_acc = float((val_probs.argmax(1) == labels[val_idx]).mean())
        state["history"].append({"epoch": epoch + 1, "train_loss": total / max(1, len(order)),
                                 "val_loss": val_loss, "val_top1": val_acc})
        state["epoch"] = epoch + 1
        if val_loss < state["best_val_loss"]:
            state.update(best_val_loss=val_loss, best_epoch=epoch + 1, stale=0)
            save_model(run_dir, model, normaliser)
        else:
            state["stale"] += 1
        save_checkpoint(run_dir, model, optimizer, state)
        if on_epoch is not None:
            on_epoch(dict(state["history"][-1]))
        bar.set_postfix(loss=f"{total / max(1, len(order)):.3f}", val_loss=f"{val_loss:.3f}", val_top1=f"{val_acc:.3f}")
        if stop_after is not None and state["epoch"] >= stop_after:
            break
        if state["stale"] >= config.patience:
            log.info("early stop at epoch %d (best %d)", epoch + 1, state["best_epoch"])
            break
    bar.close()

    info = {
        "train_config": config.to_dict(),
        "student_args": student_args,
        "best_epoch": state["best_epoch"],
        "epochs_run": state["epoch"],
        "history": state["history"],
        "data": trials.source,
        "sfreq": trials.sfreq,
        "ch_names": list(trials.ch_names),
        "class_ids": list(trials.class_ids),
        "class_names": list(trials.class_names),
        "tmin": trials.tmin,
        "signal_unit": trials.unit,
        "marker_classes": unresolved_markers(*_distinct_markers(trials), list(trials.class_ids), list(trials.class_names)),
        "preprocessing": trials.preprocessing,
    }
    (run_dir / "run.json").write_text(json.dumps(info, indent=1))
    return info


def with_overrides(config: TrainConfig, **kwargs) -> TrainConfig:
    """A copy of ``config`` with the given fields replaced (``None`` values ignored)."""
    return replace(config, **{k: v for k, v in kwargs.items() if v is not None})
