"""Experiments: train, test and report a model on a named split; the KD student beside its baselines
and controls. Used by ``bci-train`` and ``tools/bench_students.py``."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bci_stream.contract.features import ErpConfig
from bci_stream.io.safe_write import write_text, write_with
from bci_stream.contract.trials import Trials
from offline_training.experiments.baselines import fit_power_logreg, predict_power_logreg
from offline_training.training.fit import TrainConfig, fit, load_model, model_inputs, predict
from offline_training.experiments.evaluate import confusion_png, evaluate, learning_curve_png, report_markdown
from offline_training.training.splits import SplitError, clean_training, make_split, resolve_split

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
                   spectrogram=replace(config.spectrogram, sfreq=sfreq, nperseg=nperseg),
                   erp=erp_for_rate(config.erp, sfreq))


def erp_for_rate(erp: ErpConfig, sfreq: float) -> ErpConfig:
    """``erp`` (given at :class:`ErpConfig`'s reference rate) at ``sfreq``: the same filter length in
    seconds (odd taps), an output rate near the reference's, a cut-off below the new Nyquist."""
    if erp.sfreq == sfreq:
        return erp
    ratio = sfreq / erp.sfreq
    numtaps = max(1, int(round(erp.numtaps * ratio)) // 2 * 2 + 1)
    decimate = max(1, int(round(erp.decimate * ratio)))
    cutoff = min(erp.cutoff, 0.45 * sfreq / decimate)
    return replace(erp, sfreq=sfreq, numtaps=numtaps, decimate=decimate, cutoff=cutoff)


def test_probabilities(run_dir: Path, trials: Trials, test_idx: np.ndarray) -> np.ndarray:
    model, normaliser, config, _ = load_model(run_dir)
    x = normaliser(model_inputs(trials.subset(test_idx), config, jitter=False)).astype(np.float32)
    return predict(model, x)


def oracle_kind(split_name: str) -> str:
    """Which phantom oracle applies to a split: "subject-agnostic" where the test subjects' gain and
    latency are not learnable from training trials of the same block/subject (leave-subject-out,
    by-block), else "full" (knows each subject's gain and latency)."""
    return "subject-agnostic" if split_name.startswith("loso-") or split_name == "by-block" else "full"


def oracle_metrics(oracle: Oracle, trials: Trials, test: np.ndarray, config: TrainConfig, split_name: str,
                   kind: str) -> dict:
    """The phantom oracle (``kind`` "full" or "subject-agnostic") on the test trials' crop."""
    cropped = trials.subset(test).crop(config.crop_start, config.crop_stop)
    probs = oracle(cropped, subject_agnostic=kind == "subject-agnostic")
    out = evaluate(probs, trials.labels[test], trials.subjects[test], split_name)
    out["oracle_kind"] = kind
    return out


ORACLE_ROW = {"full": "oracle, full (knows templates, noise model, each subject's gain and latency)",
              "subject-agnostic": "oracle, subject-agnostic (templates and noise model; gain and latency "
                                  "averaged over the prior)"}


def save_predictions(run_dir: Path, probs: np.ndarray, test: np.ndarray, labels: np.ndarray) -> None:
    """``predictions.npz``: test indices, labels and probabilities (for paired tests between runs)."""
    write_with(run_dir / "predictions.npz", lambda tmp: np.savez_compressed(
        tmp, test=test, labels=labels, probabilities=probs.astype(np.float32)))


def train_and_test(trials: Trials, split_name: str, config: TrainConfig, run_dir: str | Path,
                   soft_labels: np.ndarray | None = None, teacher: str = "", oracle: Oracle | None = None,
                   resume: bool = False, progress: bool = True, inputs: np.ndarray | None = None,
                   name: str | None = None, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Fit one student on ``split_name`` (``auto``: see :func:`offline_training.training.splits.resolve_split`)
    and write ``run_dir``: the model, ``split.json``, ``metrics.json`` (``split`` actually used, ``top1``,
    ``top1_ci``, ``top1_p``, ... on the test split), ``predictions.npz``, ``report.md``, ``confusion.png``
    and ``learning_curve.png``. ``split_name == "shuffled"`` permutes the labels within the training and
    within the validation part (:func:`offline_training.experiments.controls.shuffled_within`; test labels stay true).
    With a phantom ``oracle``, the oracle that applies to the split (:func:`oracle_kind`) is reported
    beside it. The split is checked (non-empty, disjoint) before any training; :class:`SplitError` says
    which split would work. ``on_epoch`` goes to :func:`~offline_training.training.fit.fit` (a sweep's per-epoch
    report)."""
    from offline_training.experiments.controls import shuffled_within

    # 1. the split, checked before any work
    run_dir = Path(run_dir)
    split_name, why = resolve_split(trials, split_name)
    split = make_split(trials, split_name, seed=config.seed)
    kept = clean_training(trials.eeg, trials.labels, split["train"], config.reject)
    rejected, split = len(split["train"]) - len(kept), {**split, "train": kept}
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "split.json", json.dumps({"name": split_name, "reason": why, "rejected_train": rejected,
                                                    **{k: v.tolist() for k, v in split.items()}}))
    train_labels = shuffled_within(trials.labels, split, config.seed) if split_name == "shuffled" else None
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
                dropped=trials.dropped, rejected_train=rejected, software=software_versions())
    write_text(run_dir / "run.json", json.dumps(info, indent=1))
    # 3. test
    test = split["test"]
    probs = test_probabilities(run_dir, trials, test)
    save_predictions(run_dir, probs, test, trials.labels[test])
    metrics = evaluate(probs, trials.labels[test], trials.subjects[test], split_name)
    best = info["history"][info["best_epoch"] - 1] if info["best_epoch"] > 0 else {}
    metrics.update(split_reason=why, train_seconds=round(seconds, 1), val_top1=best.get("val_top1"))
    label = name or f"{config.student}{' + KD' if config.kd else ''}"
    rows = [(label, metrics)]
    if oracle is not None and split_name != "shuffled":
        kind = oracle_kind(split_name)
        om = oracle_metrics(oracle, trials, test, config, split_name, kind)
        metrics["oracle_top1"], metrics["oracle_top5"], metrics["oracle_kind"] = om["top1"], om["top5"], kind
        rows.append((ORACLE_ROW[kind], om))
    # 4. write
    write_text(run_dir / "metrics.json", json.dumps(metrics, indent=1))
    if len(rows) > 1:
        metrics = {**metrics, "oracle": rows[1][1]}
    confusion_png(probs, trials.labels[test], trials.class_names, run_dir / "confusion.png",
                  f"{label} — test split '{split_name}' — top-1 {metrics['top1']:.3f} (n={len(test)})")
    learning_curve_png(info["history"], run_dir / "learning_curve.png", f"{label} — split '{split_name}'",
                       chance=1 / trials.n_classes)
    write_text(run_dir / "report.md", report_markdown(rows, trials.source, run_info=run_info(trials, config, split_name, why)))
    return metrics


def _split_and_labels(trials: Trials, split_name: str, seed: int) -> tuple[str, dict, np.ndarray]:
    from offline_training.experiments.controls import shuffled_within

    split_name, _ = resolve_split(trials, split_name)
    split = make_split(trials, split_name, seed=seed)
    labels = shuffled_within(trials.labels, split, seed) if split_name == "shuffled" else trials.labels
    return split_name, split, labels


def power_logreg_on_split(trials: Trials, split_name: str, config: TrainConfig) -> dict:
    """The logistic-regression-on-power baseline on the same crop and split."""
    split_name, split, labels = _split_and_labels(trials, split_name, config.seed)
    eeg = trials.eeg[..., config.crop_start : config.crop_stop]
    model = fit_power_logreg(eeg[split["train"]], labels[split["train"]], config.seed)
    probs = predict_power_logreg(model, eeg[split["test"]], trials.n_classes)
    return evaluate(probs, trials.labels[split["test"]], trials.subjects[split["test"]], split_name)


def lda_on_split(trials: Trials, split_name: str, config: TrainConfig, out_dir: Path | None = None) -> dict:
    """The shrinkage-LDA reference (:class:`offline_training.experiments.lda.ShrinkageLDA`) on the erp features of the
    same crop and split; writes ``out_dir/predictions.npz`` when given."""
    from offline_training.experiments.lda import ShrinkageLDA

    split_name, split, labels = _split_and_labels(trials, split_name, config.seed)
    eeg = trials.eeg[..., config.crop_start : config.crop_stop]
    t0 = time.perf_counter()
    model = ShrinkageLDA(config.erp).fit(eeg[split["train"]], labels[split["train"]])
    probs = model.predict_proba(eeg[split["test"]], trials.n_classes)
    out = evaluate(probs, trials.labels[split["test"]], trials.subjects[split["test"]], split_name)
    out["train_seconds"] = round(time.perf_counter() - t0, 1)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        save_predictions(Path(out_dir), probs, split["test"], trials.labels[split["test"]])
    return out


def drift_probe_on_split(trials: Trials, split_name: str, config: TrainConfig) -> dict:
    """The drift probe (:func:`offline_training.experiments.controls.drift_probe`) on the same crop and split."""
    from offline_training.experiments.controls import drift_probe

    split_name, split = resolve_split(trials, split_name)[0], make_split(trials, split_name, seed=config.seed)
    probs = drift_probe(trials, split, (config.crop_start, config.crop_stop), config.seed)
    return evaluate(probs, trials.labels[split["test"]], trials.subjects[split["test"]], split_name)


@dataclass(frozen=True)
class CompareConfig:
    """What :func:`compare` trains.

    Attributes
    ----------
    students : students trained with the teacher's soft labels (hard labels when there is none).
    baselines : students trained on hard labels only (braindecode baselines; "seed" is the paper's plain CNN).
    controls : run the controls (by block, leave one subject out, shuffled labels, drift probe) on the
        best student (highest validation top-1).
    lda : run the shrinkage-LDA reference.
    """

    students: tuple[str, ...] = ("seed", "phase", "shallow")
    baselines: tuple[str, ...] = ("seed", "eegnet", "shallow", "deep4")
    controls: bool = True
    lda: bool = True


STUDENT_LABELS = {"seed": "seed CNN", "cnn": "seed CNN", "phase": "phase-aware STFT net",
                  "eegnet": "EEGNet on ERP (braindecode)", "shallow": "ShallowFBCSPNet on ERP (braindecode)",
                  "deep4": "Deep4Net on ERP (braindecode)"}


def run_label(student: str, kd: bool) -> str:
    """A table row's name: the student and whether it learnt from the teacher."""
    return f"{STUDENT_LABELS.get(student, student)}{' + KD' if kd else ' (no KD)'}"


def student_config(config: TrainConfig, student: str, kd: bool) -> TrainConfig:
    """``config`` for another student: its features (complex STFT for "phase"), same schedule and data."""
    spec = TrainConfig.for_student(student).spectrogram
    spectrogram = replace(config.spectrogram, mode=spec.mode, fmax=spec.fmax) if student == "phase" else \
        replace(config.spectrogram, mode="magnitude" if config.spectrogram.mode == "complex" else config.spectrogram.mode,
                fmax=None if config.spectrogram.mode == "complex" else config.spectrogram.fmax)
    return replace(config, student=student, kd=kd, features="auto", spectrogram=spectrogram)


def compare(trials: Trials, out_dir: str | Path, config: TrainConfig, soft_labels: np.ndarray | None,
            teacher: str = "", oracle: Oracle | None = None, controls: bool = True, lstm: bool = True,
            progress: bool = True, split: str = "auto", plan: CompareConfig | None = None) -> list[tuple[str, dict]]:
    """The students beside their baselines, references and controls on one split.

    ``split`` (``auto``: the most meaningful one, see :func:`resolve_split`); ``plan`` says which students
    (with the teacher) and baselines (hard labels) run (``lstm=False``, the old flag: no braindecode
    baselines; ``controls=False``: no controls). Rows: every student and baseline, the shrinkage-LDA
    reference, logistic regression on power, the phantom oracles (full and subject-agnostic), then the
    controls on the best student by *validation* top-1: by block, leave-one-subject-out (first subject),
    shuffled labels within the training split, and the drift probe; those that cannot run are listed with
    the reason. The best student's run lands in ``out_dir`` itself (exportable; its name in
    ``comparison.json`` "best"); the others in ``out_dir/<name>``. Writes ``out_dir/report.md`` (every row
    naming its split) and ``comparison.json``."""
    plan = plan or CompareConfig(controls=controls)
    if not lstm:
        plan = replace(plan, baselines=("seed",) if "seed" in plan.baselines else ())
    if not controls:
        plan = replace(plan, controls=False)
    out_dir = Path(out_dir)
    main, why = resolve_split(trials, split)
    make_split(trials, main, seed=config.seed)  # 1. fail before any training if the split cannot work
    kd = soft_labels is not None and config.kd
    rows: list[tuple[str, dict]] = []
    skipped: list[tuple[str, str]] = []
    cache: dict = {}

    def inputs_for(cfg: TrainConfig) -> np.ndarray:
        from offline_training.training.fit import features_of

        key = (features_of(cfg), cfg.crop_start, cfg.crop_stop, cfg.jitter)
        if key not in cache:
            cache.clear()  # one feature set in memory at a time (the standard phantom's are large)
            cache[key] = model_inputs(trials, cfg)
        return cache[key]

    # 2. students (with the teacher) and baselines (hard labels), in an order that reuses features
    runs = [(s, kd) for s in plan.students] + [(s, False) for s in plan.baselines if not (s in plan.students and not kd)]
    runs.sort(key=lambda r: (r[0] not in ("seed", "cnn"), r[0] != "phase", r[0]))
    oracles: dict[str, dict] = {}
    if oracle is not None:  # computed once; every student's metrics.json names the ceiling of its split
        test = make_split(trials, main, seed=config.seed)["test"]
        for kind in dict.fromkeys((oracle_kind(main), "subject-agnostic")):
            oracles[kind] = oracle_metrics(oracle, trials, test, config, main, kind)
    trained: dict[str, tuple[Path, dict, TrainConfig]] = {}
    for student, with_kd in runs:
        cfg = student_config(config, student, with_kd)
        name = run_label(student, with_kd)
        folder = out_dir / f"{student}{'_kd' if with_kd else ''}"
        m = train_and_test(trials, main, cfg, folder, soft_labels if with_kd else None, teacher if with_kd else "",
                           oracle=None, progress=progress, inputs=inputs_for(cfg), name=name)
        if oracles:
            kind = oracle_kind(main)
            m.update(oracle_top1=oracles[kind]["top1"], oracle_top5=oracles[kind]["top5"], oracle_kind=kind)
            write_text(folder / "metrics.json", json.dumps(m, indent=1))
        rows.append((name, m))
        trained[name] = (folder, m, cfg)
    # 3. references
    if plan.lda:
        rows.append(("shrinkage LDA on the low-passed ERP (reference)", lda_on_split(trials, main, config, out_dir / "lda")))
    rows.append(("LogReg (avg power)", power_logreg_on_split(trials, main, config)))
    for kind, om in oracles.items():
        rows.append((ORACLE_ROW[kind], om))
    # 4. the best student by validation top-1 (never the test split) becomes the run folder's model
    best_name = max(trained, key=lambda n: trained[n][1].get("val_top1") or 0.0)
    folder, best_metrics, best_cfg = trained[best_name]
    _adopt(folder, out_dir)
    # 5. controls on the best student
    if plan.controls:
        if main in ("by-block", "by-run", "by-session"):
            skipped.append(("by block", f"the main split ({main}) already holds out whole blocks"))
        elif len(np.unique(trials.runs)) < 3:
            skipped.append(("by block", f"{len(np.unique(trials.runs))} run(s)/block(s); needs each class in at least 3"))
        else:
            try:
                rows.append((f"{best_name}, control: by block", train_and_test(
                    trials, "by-block", best_cfg, out_dir / "control_by_block", soft_labels if best_cfg.kd else None,
                    teacher, oracle=oracle, progress=progress, inputs=inputs_for(best_cfg))))
            except SplitError as err:
                skipped.append(("by block", str(err)))
        subjects = np.unique(trials.subjects)
        if len(subjects) > 1:
            s = int(subjects[0])
            try:
                rows.append((f"{best_name}, control: leave subject {s} out", train_and_test(
                    trials, f"loso-{s}", best_cfg, out_dir / f"control_loso_{s}", soft_labels if best_cfg.kd else None,
                    teacher, oracle=oracle, progress=progress, inputs=inputs_for(best_cfg))))
            except SplitError as err:
                skipped.append((f"leave subject {s} out", str(err)))
        else:
            skipped.append(("leave subject out", "1 subject"))
        rows.append((f"{best_name}, control: shuffled labels (within train)", train_and_test(
            trials, "shuffled", best_cfg, out_dir / "control_shuffled", progress=progress, inputs=inputs_for(best_cfg))))
        rows.append(("control: drift probe (per-channel trial means and slopes)", drift_probe_on_split(trials, main, config)))
    else:
        skipped.append(("all controls", "--no-controls"))
    # 6. expand control rows that carry their oracle
    expanded = []
    for n, m in rows:
        if not m:
            continue
        oracle_row = m.pop("oracle", None) if isinstance(m, dict) else None
        expanded.append((n, m))
        if oracle_row is not None:
            expanded.append((f"{ORACLE_ROW[oracle_row['oracle_kind']]} — {n.split(', control: ')[-1]}", oracle_row))
    rows = expanded
    notes = [f"Best student by validation top-1: **{best_name}** (its run is this folder's model).",
             "Controls: *by block* holds out whole recording blocks (Li et al. 2020); *leave subject out* "
             "tests on an unseen subject (judged against the subject-agnostic oracle); *shuffled labels* permutes "
             "the labels within the training (and validation) part and must land near chance; the *drift probe* "
             "decodes from per-channel trial means and slopes and must sit at chance unless the design has a "
             "block confound."]
    info = run_info(trials, best_cfg, main, why)
    write_text(out_dir / "report.md", report_markdown(rows, trials.source, notes, skipped, info))
    write_text(out_dir / "comparison.json", json.dumps(
        {"split": main, "split_reason": why, "best": best_name, "best_folder": folder.name,
         "rows": [{"model": n, **m} for n, m in rows],
         "skipped": [{"what": n, "why": w} for n, w in skipped]}, indent=1))
    return rows


def _adopt(folder: Path, out_dir: Path) -> None:
    """Copy a run's files into ``out_dir`` (the folder ``bci-train export`` reads)."""
    import shutil

    for item in folder.iterdir():
        if item.is_file():
            write_with(out_dir / item.name, lambda tmp, item=item: shutil.copyfile(item, tmp))
