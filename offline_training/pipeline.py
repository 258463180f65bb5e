"""Experiments: train, test and report a model on a named split; the KD student beside its baselines
and controls. Used by ``bci-train`` and ``tools/bench_students.py``."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from bci_stream.trials import Trials
from offline_training.baselines import fit_power_logreg, predict_power_logreg
from offline_training.distill import TrainConfig, fit, load_model, model_inputs, predict
from offline_training.evaluate import confusion_png, evaluate, learning_curve_png, report_markdown
from offline_training.splits import SplitError, make_split, resolve_split, shuffled_labels

Oracle = Callable[[Trials], np.ndarray]


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
    info = {
        "data spec": f"`{trials.source}`",
        "trials": trials.summary(),
        "split": f"{split} ({why})",
        "classes": ", ".join(f"{i} = {n}" for i, n in zip(trials.class_ids, trials.class_names))
        if trials.n_classes <= 12 else f"{trials.n_classes} classes",
        "dropped trials": ", ".join(f"{k}: {v}" for k, v in trials.dropped.items()) or "none",
        "signal unit": getattr(trials, "unit", "uV"),
        "preprocessing": getattr(trials, "preprocessing", None) or "none",
        "window": f"samples {config.crop_start}:{config.crop_stop} of each epoch = "
                  f"{trials.tmin + config.crop_start / trials.sfreq:.3f}..{trials.tmin + config.crop_stop / trials.sfreq:.3f} s "
                  f"from stimulus onset at {trials.sfreq:g} Hz",
        "training config": config.to_dict(),
        "software": software_versions(),
    }
    return info


def for_data(config: TrainConfig, trials: Trials, window: tuple[float, float] | None = None,
             segment: float | None = None, crop_given: bool = False, nperseg_given: bool = False) -> TrainConfig:
    """``config`` fitted to the trials' sampling rate.

    ``window`` (seconds from stimulus onset) and ``segment`` (STFT segment, seconds) set the crop and
    ``nperseg`` at any rate. Otherwise :class:`TrainConfig`'s defaults, which are samples at the seed's
    1 kHz (20:460, nperseg 40), are scaled to the same seconds at the trials' rate, unless the samples
    were given explicitly (``crop_given``/``nperseg_given``).
    """
    sfreq, reference = trials.sfreq, TrainConfig().spectrogram.sfreq
    n_times = trials.eeg.shape[-1]
    start, stop, nperseg = config.crop_start, config.crop_stop, config.spectrogram.nperseg
    if window is not None:
        start, stop = int(round((window[0] - trials.tmin) * sfreq)), int(round((window[1] - trials.tmin) * sfreq))
    elif not crop_given and sfreq != reference:
        start, stop = int(round(start * sfreq / reference)), int(round(stop * sfreq / reference))
    if segment is not None:
        nperseg = int(round(segment * sfreq))
    elif not nperseg_given and sfreq != reference:
        nperseg = max(4, int(round(nperseg * sfreq / reference)))
    if not 0 <= start < stop <= n_times:
        raise ValueError(f"window {trials.tmin + start / sfreq:g}..{trials.tmin + stop / sfreq:g} s is outside the epochs "
                         f"({trials.tmin:g}..{trials.tmin + n_times / sfreq:g} s); widen tmin/tmax or pass --window START STOP")
    if not 2 <= nperseg <= stop - start:
        raise ValueError(f"STFT segment of {nperseg} samples does not fit the {stop - start}-sample window; pass --segment SECONDS")
    return replace(config, crop_start=start, crop_stop=stop,
                   spectrogram=replace(config.spectrogram, sfreq=sfreq, nperseg=nperseg))


def test_probabilities(run_dir: Path, trials: Trials, test_idx: np.ndarray) -> np.ndarray:
    model, normaliser, config, _ = load_model(run_dir)
    x = normaliser(model_inputs(trials.subset(test_idx), config)).astype(np.float32)
    return predict(model, x)


def train_and_test(trials: Trials, split_name: str, config: TrainConfig, run_dir: str | Path,
                   soft_labels: np.ndarray | None = None, teacher: str = "", oracle: Oracle | None = None,
                   resume: bool = False, progress: bool = True, inputs: np.ndarray | None = None,
                   name: str | None = None, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Fit one student on ``split_name`` (``auto``: see :func:`offline_training.splits.resolve_split`)
    and write ``run_dir``: the model, ``split.json``, ``metrics.json`` (``split`` actually used, ``top1``,
    ``top1_ci``, ``top1_p``, ... on the test split), ``report.md``, ``confusion.png`` and
    ``learning_curve.png``. ``split_name == "shuffled"`` trains on permuted labels. The split is
    checked (non-empty, disjoint) before any training; :class:`SplitError` says which split would work.
    ``on_epoch`` goes to :func:`~offline_training.distill.fit` (a sweep's per-epoch report)."""
    # 1. the split, checked before any work
    run_dir = Path(run_dir)
    split_name, why = resolve_split(trials, split_name)
    split = make_split(trials, split_name, seed=config.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "split.json").write_text(json.dumps({"name": split_name, "reason": why,
                                                    **{k: v.tolist() for k, v in split.items()}}))
    train_labels = shuffled_labels(trials.labels, config.seed) if split_name == "shuffled" else None
    if split_name == "shuffled":  # the control trains on noise labels alone
        soft_labels, config = None, replace(config, kd=False)
    # 2. fit
    t0 = time.perf_counter()
    info = fit(trials, split, config, run_dir, soft_labels=soft_labels, train_labels=train_labels, resume=resume,
               progress=progress, inputs=inputs, on_epoch=on_epoch)
    seconds = time.perf_counter() - t0
    info.update(teacher=teacher if config.kd else "", train_seconds=round(seconds, 1), split=split_name,
                split_reason=why, signal_unit=info.get("signal_unit", getattr(trials, "unit", "uV")),
                preprocessing=info.get("preprocessing", getattr(trials, "preprocessing", None)),
                dropped=trials.dropped, software=software_versions())
    (run_dir / "run.json").write_text(json.dumps(info, indent=1))
    # 3. test
    test = split["test"]
    probs = test_probabilities(run_dir, trials, test)
    metrics = evaluate(probs, trials.labels[test], trials.subjects[test], split_name)
    metrics.update(split_reason=why, train_seconds=round(seconds, 1))
    label = name or f"{config.student}{' + KD' if config.kd else ''}"
    rows = [(label, metrics)]
    if oracle is not None and split_name != "shuffled":
        cropped = trials.subset(test).crop(config.crop_start, config.crop_stop)
        oracle_metrics = evaluate(oracle(cropped), trials.labels[test], trials.subjects[test], split_name)
        metrics["oracle_top1"], metrics["oracle_top5"] = oracle_metrics["top1"], oracle_metrics["top5"]
        rows.append(("oracle (true templates)", oracle_metrics))
    # 4. write
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    if len(rows) > 1:
        metrics = {**metrics, "oracle": rows[1][1]}
    confusion_png(probs, trials.labels[test], trials.class_names, run_dir / "confusion.png",
                  f"{label} — test split '{split_name}' — top-1 {metrics['top1']:.3f} (n={len(test)})")
    learning_curve_png(info["history"], run_dir / "learning_curve.png", f"{label} — split '{split_name}'",
                       chance=1 / trials.n_classes)
    (run_dir / "report.md").write_text(report_markdown(rows, trials.source, run_info=run_info(trials, config, split_name, why)))
    return metrics


def power_logreg_on_split(trials: Trials, split_name: str, config: TrainConfig) -> dict:
    """The logistic-regression-on-power baseline on the same crop and split."""
    split_name, _ = resolve_split(trials, split_name)
    split = make_split(trials, split_name, seed=config.seed)
    eeg = trials.eeg[..., config.crop_start : config.crop_stop]
    labels = shuffled_labels(trials.labels, config.seed) if split_name == "shuffled" else trials.labels
    model = fit_power_logreg(eeg[split["train"]], labels[split["train"]], config.seed)
    probs = predict_power_logreg(model, eeg[split["test"]], trials.n_classes)
    return evaluate(probs, trials.labels[split["test"]], trials.subjects[split["test"]], split_name)


def compare(trials: Trials, out_dir: str | Path, config: TrainConfig, soft_labels: np.ndarray | None,
            teacher: str = "", oracle: Oracle | None = None, controls: bool = True, lstm: bool = True,
            progress: bool = True, split: str = "auto") -> list[tuple[str, dict]]:
    """The seed's Table 1 on this data: KD student, plain CNN, LSTM, power logistic regression (and the
    oracle), on ``split`` (``auto``: the most meaningful one, see :func:`resolve_split`); then the
    controls on the KD student where they can mean something: by block, leave-one-subject-out (first
    subject), shuffled labels; those that cannot run are listed with the reason. The KD run lands in
    ``out_dir`` itself (exportable); the others in ``out_dir/<name>``. Writes ``out_dir/report.md``
    (every row naming its split) and ``comparison.json``."""
    out_dir = Path(out_dir)
    main, why = resolve_split(trials, split)
    make_split(trials, main, seed=config.seed)  # 1. fail before any training if the split cannot work
    kd_config = config if soft_labels is not None else replace(config, kd=False)
    cnn_inputs = model_inputs(trials, config)
    rows: list[tuple[str, dict]] = []
    skipped: list[tuple[str, str]] = []
    student = "CNN + KD (student)" if kd_config.kd else "CNN (student, no teacher)"
    kd = train_and_test(trials, main, kd_config, out_dir, soft_labels, teacher, oracle=oracle,
                        progress=progress, inputs=cnn_inputs, name=student)
    rows.append((student, kd))
    if "oracle" in kd:
        rows.append(("oracle (true templates)", kd.pop("oracle")))
    if kd_config.kd:
        plain = train_and_test(trials, main, replace(config, kd=False), out_dir / "cnn", progress=progress,
                               inputs=cnn_inputs, name="CNN (no KD)")
        rows.append(("CNN (no KD)", plain))
    if lstm:
        rows.append(("LSTM (raw EEG)", train_and_test(trials, main, replace(config, student="lstm", kd=False),
                                                      out_dir / "lstm", progress=progress, name="LSTM")))
    rows.append(("LogReg (avg power)", power_logreg_on_split(trials, main, config)))
    if controls:
        if main in ("by-block", "by-run", "by-session"):
            skipped.append(("by block", f"the main split ({main}) already holds out whole blocks"))
        elif len(np.unique(trials.runs)) < 3:
            skipped.append(("by block", f"{len(np.unique(trials.runs))} run(s)/block(s); needs each class in at least 3"))
        else:
            try:
                rows.append(("CNN + KD, control: by block" if kd_config.kd else "CNN, control: by block", train_and_test(
                    trials, "by-block", kd_config, out_dir / "control_by_block", soft_labels, teacher,
                    progress=progress, inputs=cnn_inputs)))
            except SplitError as err:
                skipped.append(("by block", str(err)))
        subjects = np.unique(trials.subjects)
        if len(subjects) > 1:
            s = int(subjects[0])
            try:
                rows.append((f"CNN, control: leave subject {s} out", train_and_test(
                    trials, f"loso-{s}", kd_config, out_dir / f"control_loso_{s}", soft_labels, teacher,
                    progress=progress, inputs=cnn_inputs)))
            except SplitError as err:
                skipped.append((f"leave subject {s} out", str(err)))
        else:
            skipped.append(("leave subject out", "1 subject"))
        rows.append(("CNN, control: shuffled labels", train_and_test(
            trials, "shuffled", config, out_dir / "control_shuffled", progress=progress, inputs=cnn_inputs)))
    else:
        skipped.append(("all controls", "--no-controls"))
    if not lstm:
        skipped.append(("LSTM baseline", "--no-lstm"))
    rows = [(n, m) for n, m in rows if m]
    notes = ["Controls: *by block* holds out whole recording blocks (Li et al. 2020); *leave subject out* "
             "tests on an unseen subject; *shuffled labels* trains on permuted labels and must land near chance."]
    info = run_info(trials, kd_config, main, why)
    (out_dir / "report.md").write_text(report_markdown(rows, trials.source, notes, skipped, info))
    (out_dir / "comparison.json").write_text(json.dumps(
        {"split": main, "split_reason": why, "rows": [{"model": n, **m} for n, m in rows],
         "skipped": [{"what": n, "why": w} for n, w in skipped]}, indent=1))
    return rows
