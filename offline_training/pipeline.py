"""Experiments: train, test and report a model on a named split; the KD student beside its baselines
and controls. Used by ``bci-train`` and ``tools/bench_students.py``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from bci_stream.trials import Trials
from offline_training.baselines import fit_power_logreg, predict_power_logreg
from offline_training.distill import TrainConfig, fit, load_model, model_inputs, predict
from offline_training.evaluate import confusion_png, evaluate, report_markdown
from offline_training.splits import make_split, shuffled_labels

Oracle = Callable[[Trials], np.ndarray]


def test_probabilities(run_dir: Path, trials: Trials, test_idx: np.ndarray) -> np.ndarray:
    model, normaliser, config, _ = load_model(run_dir)
    x = normaliser(model_inputs(trials.subset(test_idx), config)).astype(np.float32)
    return predict(model, x)


def train_and_test(trials: Trials, split_name: str, config: TrainConfig, run_dir: str | Path,
                   soft_labels: np.ndarray | None = None, teacher: str = "", oracle: Oracle | None = None,
                   resume: bool = False, progress: bool = True, inputs: np.ndarray | None = None,
                   name: str | None = None, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Fit one student on ``split_name`` and write ``run_dir``: the model, ``split.json``,
    ``metrics.json`` (``split``, ``top1``, ``top3``, ``top5`` on the test split, and more),
    ``report.md`` and ``confusion.png``. ``split_name == "shuffled"`` trains on permuted labels.
    ``on_epoch`` goes to :func:`~offline_training.distill.fit` (a sweep's per-epoch report)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    split = make_split(trials, split_name, seed=config.seed)
    (run_dir / "split.json").write_text(json.dumps({"name": split_name, **{k: v.tolist() for k, v in split.items()}}))
    train_labels = shuffled_labels(trials.labels, config.seed) if split_name == "shuffled" else None
    if split_name == "shuffled":  # the control trains on noise labels alone
        soft_labels, config = None, replace(config, kd=False)
    t0 = time.perf_counter()
    info = fit(trials, split, config, run_dir, soft_labels=soft_labels, train_labels=train_labels, resume=resume,
               progress=progress, inputs=inputs, on_epoch=on_epoch)
    seconds = time.perf_counter() - t0
    info.update(teacher=teacher if config.kd else "", train_seconds=round(seconds, 1))
    (run_dir / "run.json").write_text(json.dumps(info, indent=1))
    test = split["test"]
    probs = test_probabilities(run_dir, trials, test)
    metrics = evaluate(probs, trials.labels[test], trials.subjects[test], split_name)
    metrics["train_seconds"] = round(seconds, 1)
    label = name or f"{config.student}{' + KD' if config.kd else ''}"
    rows = [(label, metrics)]
    if oracle is not None and split_name != "shuffled":
        cropped = trials.subset(test).crop(config.crop_start, config.crop_stop)
        oracle_metrics = evaluate(oracle(cropped), trials.labels[test], trials.subjects[test], split_name)
        metrics["oracle_top1"], metrics["oracle_top5"] = oracle_metrics["top1"], oracle_metrics["top5"]
        rows.append(("oracle (true templates)", oracle_metrics))
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    if len(rows) > 1:
        metrics = {**metrics, "oracle": rows[1][1]}
    confusion_png(probs, trials.labels[test], trials.class_names, run_dir / "confusion.png",
                  f"{label} — test split '{split_name}' — top-1 {metrics['top1']:.3f}")
    (run_dir / "report.md").write_text(report_markdown(rows, trials.source))
    return metrics


def power_logreg_on_split(trials: Trials, split_name: str, config: TrainConfig) -> dict:
    """The logistic-regression-on-power baseline on the same crop and split."""
    split = make_split(trials, split_name, seed=config.seed)
    eeg = trials.eeg[..., config.crop_start : config.crop_stop]
    labels = shuffled_labels(trials.labels, config.seed) if split_name == "shuffled" else trials.labels
    model = fit_power_logreg(eeg[split["train"]], labels[split["train"]], config.seed)
    probs = predict_power_logreg(model, eeg[split["test"]], trials.n_classes)
    return evaluate(probs, trials.labels[split["test"]], trials.subjects[split["test"]], split_name)


def compare(trials: Trials, out_dir: str | Path, config: TrainConfig, soft_labels: np.ndarray | None,
            teacher: str = "", oracle: Oracle | None = None, controls: bool = True, lstm: bool = True,
            progress: bool = True) -> list[tuple[str, dict]]:
    """The seed's Table 1 on this data: KD student, plain CNN, LSTM, power logistic regression (and the
    oracle), by image; then the controls on the KD student: by block, leave-one-subject-out (first
    subject), shuffled labels. The KD run lands in ``out_dir`` itself (exportable); the others in
    ``out_dir/<name>``. Writes ``out_dir/report.md`` with every row naming its split."""
    out_dir = Path(out_dir)
    cnn_inputs = model_inputs(trials, config)
    rows: list[tuple[str, dict]] = []
    kd = train_and_test(trials, "by-image", config, out_dir, soft_labels, teacher, oracle=oracle,
                        progress=progress, inputs=cnn_inputs, name="CNN + KD (student)")
    rows.append(("CNN + KD (student)", kd))
    if "oracle" in kd:
        rows.append(("oracle (true templates)", kd.pop("oracle")))
    plain = train_and_test(trials, "by-image", replace(config, kd=False), out_dir / "cnn", progress=progress,
                           inputs=cnn_inputs, name="CNN (no KD)")
    rows.append(("CNN (no KD)", plain))
    if lstm:
        rows.append(("LSTM (raw EEG)", train_and_test(trials, "by-image", replace(config, student="lstm", kd=False),
                                                      out_dir / "lstm", progress=progress, name="LSTM")))
    rows.append(("LogReg (avg power)", power_logreg_on_split(trials, "by-image", config)))
    if controls:
        if len(np.unique(trials.runs)) >= 3:
            try:
                rows.append(("CNN + KD, control: by block", train_and_test(
                    trials, "by-block", config, out_dir / "control_by_block", soft_labels, teacher,
                    progress=progress, inputs=cnn_inputs)))
            except ValueError as err:
                rows.append((f"control by block skipped: {err}", {}))
        subjects = np.unique(trials.subjects)
        if len(subjects) > 1:
            s = int(subjects[0])
            rows.append((f"CNN + KD, control: leave subject {s} out", train_and_test(
                trials, f"loso-{s}", config, out_dir / f"control_loso_{s}", soft_labels, teacher,
                progress=progress, inputs=cnn_inputs)))
        rows.append(("CNN, control: shuffled labels", train_and_test(
            trials, "shuffled", config, out_dir / "control_shuffled", progress=progress, inputs=cnn_inputs)))
    rows = [(n, m) for n, m in rows if m]
    notes = ["Controls: *by block* holds out whole recording blocks (Li et al. 2020); *leave subject out* "
             "tests on an unseen subject; *shuffled labels* trains on permuted labels and must land near chance."]
    (out_dir / "report.md").write_text(report_markdown(rows, trials.source, notes))
    (out_dir / "comparison.json").write_text(json.dumps([{"model": n, **m} for n, m in rows], indent=1))
    return rows

