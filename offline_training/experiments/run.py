"""One training run, the skeleton both objectives share: split → fit → test → write, each file once.

:func:`run` takes a split resolved once (:func:`~offline_training.training.splits.resolve_run_split`), an
:class:`~offline_training.training.objectives.Objective` (what is learnt) and a :class:`RunTest` (how the
trained model is tested and reported: :class:`offline_training.experiments.pipeline.ClassesTest`,
:class:`offline_training.experiments.zero_shot.EmbeddingTest`). It writes ``split.json``, ``run.json``,
``metrics.json``, ``predictions.npz``, the plots and ``report.md`` once each, and tests the model it holds
in memory (nothing is read back from disk). The returned :class:`RunResult` carries the model on to
export.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from bci_stream.contract.trials import Trials
from bci_stream.io.safe_write import write_text, write_with
from offline_training.training.config import TrainConfig
from offline_training.training.splits import RunSplit


def software_versions() -> dict[str, str]:
    """Versions of bci-stream and the libraries a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("bci-stream", "numpy", "scipy", "torch", "mne", "mne-bids", "onnx", "onnxruntime-gpu", "onnxruntime"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def run_info(trials: Trials, config: TrainConfig, split: str, why: str) -> dict:
    """What a report lists below its table: data, split and why, classes, dropped trials,
    preprocessing, the full training configuration and the software versions."""
    return {
        "data spec": f"`{trials.source}`",
        "trials": trials.summary(),
        "split": f"{split} ({why})",
        "classes": ", ".join(f"{i} = {n}" for i, n in zip(trials.class_ids, trials.class_names))
        if trials.n_classes <= 12 else f"{trials.n_classes} classes",
        "dropped trials": ", ".join(f"{k}: {v}" for k, v in trials.dropped.items()) or "none",
        "signal unit": trials.unit,
        "preprocessing": trials.preprocessing or "none",
        "window": f"samples {config.crop_start}:{config.crop_stop} of each epoch = "
                  f"{trials.tmin + config.crop_start / trials.sfreq:.3f}..{trials.tmin + config.crop_stop / trials.sfreq:.3f} s "
                  f"from stimulus onset at {trials.sfreq:g} Hz",
        "training config": config.to_dict(),
        "software": software_versions(),
    }


@dataclass
class Outcome:
    """A trained model's test, in memory.

    Attributes
    ----------
    metrics : what ``metrics.json`` holds (named split, top-k with CIs, ...).
    probabilities : ``(n_test, k)`` over classes or retrieval candidates.
    truth : ``(n_test,)`` index of each test trial's class / candidate.
    names : the ``k`` class or candidate names.
    arrays : what ``predictions.npz`` holds.
    extra_rows : report rows after the model's own (its oracle).
    """

    metrics: dict
    probabilities: np.ndarray
    truth: np.ndarray
    names: list[str]
    arrays: dict[str, np.ndarray]
    extra_rows: list[tuple[str, dict]] = field(default_factory=list)


class RunTest(Protocol):
    """How a run of one objective is tested and reported."""

    max_confusion: int | None  # no confusion plot above this many classes/candidates (None: always)

    def split_entries(self) -> dict: ...

    def info_entries(self, config: TrainConfig) -> dict: ...

    def label(self, config: TrainConfig) -> str: ...

    def test(self, fitted, trials: Trials, split: RunSplit) -> Outcome: ...

    def titles(self, label: str, outcome: Outcome, split: RunSplit) -> tuple[str, str, float | None]: ...

    def notes(self, metrics: dict) -> list[str]: ...


@dataclass
class RunResult:
    """A finished run: the fit (model in memory, run info), the test metrics (as written), the report rows
    (the model, then its oracle) and the split it used."""

    fit: object
    metrics: dict
    rows: list[tuple[str, dict]]
    split: RunSplit
    label: str
    folder: str = ""  # its folder's name under a comparison (compare sets it)


def run(trials: Trials, split: RunSplit, config: TrainConfig, run_dir: str | Path, objective, test: RunTest,
        train_labels: np.ndarray | None = None, resume: bool = False, progress: bool = True,
        inputs: np.ndarray | None = None, on_epoch: Callable[[dict], None] | None = None, name: str | None = None,
        extra_info: dict | None = None) -> RunResult:
    """Fit ``objective`` on ``split`` and write ``run_dir`` once (see the module docstring).

    ``train_labels``: labels to train on (the shuffled control); ``inputs``: precomputed model inputs shared
    between runs; ``on_epoch``: each epoch's history row (a sweep's scheduler); ``name``: the report row;
    ``extra_info``: entries ``run.json`` adds (a sweep trial's subject and trial)."""
    from offline_training.training.fit import fit

    # 1. the split, as resolved once
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "split.json", json.dumps(split.to_json(**test.split_entries())))
    # 2. fit; run.json once
    t0 = time.perf_counter()
    fitted = fit(trials, split.parts, config, run_dir, train_labels=train_labels, resume=resume, progress=progress,
                 inputs=inputs, on_epoch=on_epoch, objective=objective)
    seconds = round(time.perf_counter() - t0, 1)
    fitted.info.update(train_seconds=seconds, split=split.name, split_reason=split.reason, dropped=trials.dropped,
                       rejected_train=split.rejected, software=software_versions(), **test.info_entries(config),
                       **(extra_info or {}))
    write_text(run_dir / "run.json", json.dumps(fitted.info, indent=1))
    # 3. test the model in memory
    outcome = test.test(fitted, trials, split)
    info = fitted.info
    best = info["history"][info["best_epoch"] - 1] if info["best_epoch"] > 0 else {}
    outcome.metrics.update(split_reason=split.reason, train_seconds=seconds, val_top1=best.get("val_top1"))
    # 4. write
    label = name or test.label(config)
    rows = [(label, outcome.metrics), *outcome.extra_rows]
    write_outcome(run_dir, test, outcome, label, rows, trials, split, config, info["history"])
    return RunResult(fitted, outcome.metrics, rows, split, label)


def write_outcome(run_dir: Path, test: RunTest, outcome: Outcome, label: str, rows: list[tuple[str, dict]],
                  trials: Trials, split: RunSplit, config: TrainConfig, history: list[dict]) -> None:
    """``predictions.npz``, ``metrics.json``, ``confusion.png``, ``learning_curve.png`` and ``report.md``, once each."""
    from offline_training.experiments.evaluate import confusion_png, learning_curve_png, report_markdown

    write_with(run_dir / "predictions.npz", lambda tmp: np.savez_compressed(tmp, **outcome.arrays))
    write_text(run_dir / "metrics.json", json.dumps(outcome.metrics, indent=1))
    confusion_title, curve_title, chance = test.titles(label, outcome, split)
    if test.max_confusion is None or len(outcome.names) <= test.max_confusion:
        confusion_png(outcome.probabilities, outcome.truth, outcome.names, run_dir / "confusion.png",
                      f"{confusion_title} — top-1 {outcome.metrics['top1']:.3f} (n={len(split.test)})")
    learning_curve_png(history, run_dir / "learning_curve.png", curve_title, chance=chance)
    write_text(run_dir / "report.md", report_markdown(rows, trials.source, test.notes(outcome.metrics) or None,
                                                       run_info=run_info(trials, config, split.name, split.reason)))
