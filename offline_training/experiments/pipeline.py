"""Experiments: train, test and report a model on a named split; the KD student beside its baselines,
references and controls. Used by ``bci-train`` and ``tools/bench_students.py``. The run itself is
:func:`offline_training.experiments.run.run`; this module holds the classes objective's test
(:class:`ClassesTest`) and :func:`compare`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bci_stream.contract.features import ErpConfig
from bci_stream.contract.trials import Trials
from bci_stream.io.safe_write import write_text, write_with
from offline_training.experiments.evaluate import evaluate, report_markdown
from offline_training.experiments.run import Outcome, RunResult, run, run_info, software_versions  # noqa: F401
from offline_training.students.registry import feature_order, student_label, student_spec
from offline_training.training.config import TrainConfig
from offline_training.training.splits import RunSplit, SplitError, resolve_run_split

Oracle = Callable[[Trials], np.ndarray]


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
    """Class probabilities ``(n_test, n_classes)`` of the model saved in ``run_dir`` (read once)."""
    from offline_training.training.export import load_run
    from offline_training.training.fit import predict

    fitted, _ = load_run(run_dir)
    return predict(fitted.model, fitted.inputs(trials.subset(test_idx)))


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


class ClassesTest:
    """The classes objective's test and report: probabilities on the test trials, top-k with CIs, the
    confusion matrix, and beside it the phantom ``oracle`` of the split (:func:`oracle_kind`), or its
    ``oracle_figures`` computed once by the caller (:func:`compare`: figures only, no row)."""

    max_confusion = None

    def __init__(self, teacher: str = "", oracle: Oracle | None = None, oracle_figures: dict | None = None):
        self.teacher, self.oracle, self.oracle_figures = teacher, oracle, oracle_figures

    def split_entries(self) -> dict:
        return {}

    def info_entries(self, config: TrainConfig) -> dict:
        return {"teacher": self.teacher if config.kd else ""}

    def label(self, config: TrainConfig) -> str:
        return f"{config.student}{' + KD' if config.kd else ''}"

    def test(self, fitted, trials: Trials, split: RunSplit) -> Outcome:
        from offline_training.training.fit import predict

        test = split.test
        probs = predict(fitted.model, fitted.inputs(trials.subset(test)))
        metrics = evaluate(probs, trials.labels[test], trials.subjects[test], split.name)
        arrays = {"test": test, "labels": trials.labels[test], "probabilities": probs.astype(np.float32)}
        outcome = Outcome(metrics, probs, trials.labels[test], list(trials.class_names), arrays)
        # the oracle's figures on the same test trials
        om = self.oracle_figures
        if om is None and self.oracle is not None and split.name != "shuffled":
            om = oracle_metrics(self.oracle, trials, test, fitted.config, split.name, oracle_kind(split.name))
            outcome.extra_rows.append((ORACLE_ROW[om["oracle_kind"]], om))
        if om is not None:
            metrics.update(oracle_top1=om["top1"], oracle_top5=om["top5"], oracle_kind=om["oracle_kind"])
        return outcome

    def titles(self, label: str, outcome: Outcome, split: RunSplit) -> tuple[str, str, float | None]:
        return f"{label} — test split '{split.name}'", f"{label} — split '{split.name}'", 1 / len(outcome.names)

    def notes(self, metrics: dict) -> list[str]:
        return []


def classes_run(trials: Trials, split: RunSplit, config: TrainConfig, run_dir: str | Path,
                soft_labels: np.ndarray | None = None, teacher: str = "", oracle: Oracle | None = None,
                oracle_figures: dict | None = None, **kwargs) -> RunResult:
    """:func:`~offline_training.experiments.run.run` of the classes objective on a resolved ``split``; the
    ``shuffled`` split trains on labels permuted within the training and the validation part
    (:func:`offline_training.experiments.controls.shuffled_within`; test labels stay true), without KD."""
    from offline_training.experiments.controls import shuffled_within
    from offline_training.training.objectives import ClassesObjective

    train_labels = None
    if split.name == "shuffled":  # the control trains on noise labels alone
        train_labels = shuffled_within(trials.labels, split.parts, config.seed)
        soft_labels, config = None, replace(config, kd=False)
    objective = ClassesObjective(config, soft_labels)
    return run(trials, split, config, run_dir, objective, ClassesTest(teacher, oracle, oracle_figures),
               train_labels=train_labels, **kwargs)


def train_and_test(trials: Trials, split_name: str, config: TrainConfig, run_dir: str | Path,
                   soft_labels: np.ndarray | None = None, teacher: str = "", oracle: Oracle | None = None,
                   resume: bool = False, progress: bool = True, inputs: np.ndarray | None = None,
                   name: str | None = None, on_epoch: Callable[[dict], None] | None = None,
                   extra_info: dict | None = None) -> dict:
    """Fit one student on ``split_name`` (``auto``: see :func:`offline_training.training.splits.resolve_split`,
    resolved once) and write ``run_dir`` once: the model, ``split.json``, ``run.json``, ``metrics.json``
    (``split`` actually used, ``top1``, ``top1_ci``, ``top1_p``, ... on the test split), ``predictions.npz``,
    ``report.md``, ``confusion.png`` and ``learning_curve.png``. With a phantom ``oracle``, the oracle that
    applies to the split (:func:`oracle_kind`) is reported beside it. The split is checked before any
    training; :class:`SplitError` says which split would work. Returns the test metrics."""
    split = resolve_run_split(trials, split_name, config.seed, config.reject)
    return classes_run(trials, split, config, run_dir, soft_labels, teacher, oracle, resume=resume,
                       progress=progress, inputs=inputs, name=name, on_epoch=on_epoch, extra_info=extra_info).metrics


# --- references and controls on the run's split ---------------------------------------------------
def _labels_of(trials: Trials, split: RunSplit, seed: int) -> np.ndarray:
    from offline_training.experiments.controls import shuffled_within

    return shuffled_within(trials.labels, split.unrejected, seed) if split.name == "shuffled" else trials.labels


def _as_split(trials: Trials, split: str | RunSplit, config: TrainConfig) -> RunSplit:
    return split if isinstance(split, RunSplit) else resolve_run_split(trials, split, config.seed)


def reference_on_split(estimator, trials: Trials, split: str | RunSplit, config: TrainConfig,
                       out_dir: Path | None = None) -> dict:
    """A scikit-learn reference (``estimator``, cloned) fitted on the training trials' crop and tested on the
    same split as the students; writes ``out_dir/predictions.npz`` when given."""
    from sklearn.base import clone

    from offline_training.experiments.references import reference_probabilities

    split = _as_split(trials, split, config)
    parts, labels = split.unrejected, _labels_of(trials, split, config.seed)
    eeg = trials.eeg[..., config.crop_start : config.crop_stop]
    t0 = time.perf_counter()
    model = clone(estimator).fit(eeg[parts["train"]], labels[parts["train"]])
    probs = reference_probabilities(model, eeg[parts["test"]], trials.n_classes)
    out = evaluate(probs, trials.labels[parts["test"]], trials.subjects[parts["test"]], split.name)
    out["train_seconds"] = round(time.perf_counter() - t0, 1)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        save_predictions(Path(out_dir), probs, parts["test"], trials.labels[parts["test"]])
    return out


def lda_on_split(trials: Trials, split: str | RunSplit, config: TrainConfig, out_dir: Path | None = None) -> dict:
    """The shrinkage-LDA reference (:func:`offline_training.experiments.lda.shrinkage_lda`) on the erp
    features of the same crop and split; writes ``out_dir/predictions.npz`` when given."""
    from offline_training.experiments.lda import shrinkage_lda

    return reference_on_split(shrinkage_lda(config.erp), trials, split, config, out_dir)


def power_logreg_on_split(trials: Trials, split: str | RunSplit, config: TrainConfig) -> dict:
    """The logistic-regression-on-power baseline on the same crop and split."""
    from offline_training.experiments.baselines import power_logreg

    out = reference_on_split(power_logreg(config.seed), trials, split, config)
    out.pop("train_seconds")
    return out


def drift_probe_on_split(trials: Trials, split: str | RunSplit, config: TrainConfig) -> dict:
    """The drift probe (:func:`offline_training.experiments.controls.drift_probe`) on the same crop and split."""
    from offline_training.experiments.controls import drift_probe

    split = _as_split(trials, split, config)
    parts = split.unrejected
    probs = drift_probe(trials, parts, (config.crop_start, config.crop_stop), config.seed)
    return evaluate(probs, trials.labels[parts["test"]], trials.subjects[parts["test"]], split.name)


def save_predictions(run_dir: Path, probs: np.ndarray, test: np.ndarray, labels: np.ndarray) -> None:
    """``predictions.npz``: test indices, labels and probabilities (for paired tests between runs)."""
    write_with(run_dir / "predictions.npz", lambda tmp: np.savez_compressed(
        tmp, test=test, labels=labels, probabilities=probs.astype(np.float32)))


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

    def without_baselines(self) -> CompareConfig:
        """``bci-train run --no-baselines``: of the hard-label baselines only the seed CNN (the plain baseline)."""
        return replace(self, baselines=tuple(b for b in self.baselines if b == "seed"))


def run_label(student: str, kd: bool) -> str:
    """A table row's name: the student's registry label and whether it learnt from the teacher."""
    return f"{student_label(student)}{' + KD' if kd else ' (no KD)'}"


def student_config(config: TrainConfig, student: str, kd: bool) -> TrainConfig:
    """``config`` for another student: its features (its registry spectrogram mode and fmax when it needs one,
    e.g. complex STFT for "phase"), same schedule and data."""
    spec = student_spec(student)
    complex_now = config.spectrogram.mode == "complex"
    spectrogram = replace(config.spectrogram, mode=spec.mode, fmax=spec.fmax) if spec.mode is not None else \
        replace(config.spectrogram, mode="magnitude" if complex_now else config.spectrogram.mode,
                fmax=None if complex_now else config.spectrogram.fmax)
    return replace(config, student=student, kd=kd, features="auto", spectrogram=spectrogram)


@dataclass
class Comparison:
    """What :func:`compare` found: the report rows, what could not run (with why), and the best student's
    run (model in memory, exportable without reading it back)."""

    rows: list[tuple[str, dict]]
    skipped: list[tuple[str, str]]
    best_name: str
    best: RunResult


@dataclass(frozen=True)
class Control:
    """One control run on the best student: its row suffix, split, folder, and why it cannot run ("": it can)."""

    what: str
    split: str
    folder: str
    skip: str = ""


def control_table(trials: Trials, main: str) -> list[Control]:
    """The controls of :func:`compare`: by block, leave the first subject out, shuffled labels."""
    runs, subjects = len(np.unique(trials.runs)), np.unique(trials.subjects)
    block_skip = (f"the main split ({main}) already holds out whole blocks" if main in ("by-block", "by-run", "by-session")
                  else f"{runs} run(s)/block(s); needs each class in at least 3" if runs < 3 else "")
    s = int(subjects[0])
    loso = Control(f"leave subject {s} out", f"loso-{s}", f"control_loso_{s}") if len(subjects) > 1 else \
        Control("leave subject out", "", "", "1 subject")
    return [Control("by block", "by-block", "control_by_block", block_skip), loso,
            Control("shuffled labels (within train)", "shuffled", "control_shuffled")]


class _Inputs:
    """Model inputs shared between the runs of :func:`compare`, one feature set in memory at a time (the
    standard phantom's are large)."""

    def __init__(self, trials: Trials):
        self.trials, self.cache = trials, {}

    def __call__(self, cfg: TrainConfig) -> np.ndarray:
        from offline_training.training.fit import features_of, model_inputs

        key = (features_of(cfg), cfg.crop_start, cfg.crop_stop, cfg.jitter)
        if key not in self.cache:
            self.cache.clear()
            self.cache[key] = model_inputs(self.trials, cfg)
        return self.cache[key]


def compare(trials: Trials, out_dir: str | Path, config: TrainConfig, soft_labels: np.ndarray | None,
            teacher: str = "", oracle: Oracle | None = None, progress: bool = True, split: str = "auto",
            plan: CompareConfig | None = None) -> Comparison:
    """The students beside their baselines, references and controls on one split, resolved once.

    ``split`` (``auto``: the most meaningful one, see :func:`resolve_split`); ``plan`` says which students
    (with the teacher) and baselines (hard labels) run and whether the controls do. Rows: every student and
    baseline, the references (:data:`REFERENCES`), the phantom oracles (full and subject-agnostic), then the
    controls (:func:`control_table`) on the best student by *validation* top-1 and the drift probe; those
    that cannot run are listed with the reason. The best student's run lands in ``out_dir`` itself
    (exportable; its name in ``comparison.json`` "best"); the others in ``out_dir/<name>``. Writes
    ``out_dir/report.md`` (every row naming its split) and ``comparison.json``."""
    plan, out_dir = plan or CompareConfig(), Path(out_dir)
    # 1. the split, once: it fails before any training if it cannot work
    main = resolve_run_split(trials, split, config.seed, config.reject)
    inputs = _Inputs(trials)
    # 2. the oracles, once: every student's metrics.json names the ceiling of its split
    oracles = {} if oracle is None else {kind: oracle_metrics(oracle, trials, main.test, config, main.name, kind)
                                         for kind in dict.fromkeys((oracle_kind(main.name), "subject-agnostic"))}
    # 3. students (with the teacher) and baselines (hard labels), in an order that reuses features
    trained = _students(trials, main, config, soft_labels, teacher, oracles, plan, out_dir, inputs, progress)
    rows = [(name, r.metrics) for name, r in trained.items()]
    # 4. references and oracles
    rows += [(label, fn(trials, main, config, out_dir / folder if folder else None))
             for label, fn, folder in REFERENCES if plan.lda or fn is not _lda_reference]
    rows += [(ORACLE_ROW[kind], om) for kind, om in oracles.items()]
    # 5. the best student by validation top-1 (never the test split) becomes the run folder's model
    best_name = max(trained, key=lambda n: trained[n].metrics.get("val_top1") or 0.0)
    best = trained[best_name]
    _adopt(out_dir / best.folder, out_dir)
    # 6. controls on the best student
    skipped: list[tuple[str, str]] = []
    if plan.controls:
        rows += _controls(trials, main, best, best_name, soft_labels, teacher, oracle, out_dir, inputs, progress, skipped)
        rows.append(("control: drift probe (per-channel trial means and slopes)", drift_probe_on_split(trials, main, config)))
    else:
        skipped.append(("all controls", "--no-controls"))
    _write_comparison(trials, out_dir, rows, skipped, best_name, best)
    return Comparison(rows, skipped, best_name, best)


def _students(trials: Trials, main: RunSplit, config: TrainConfig, soft_labels: np.ndarray | None, teacher: str,
              oracles: dict, plan: CompareConfig, out_dir: Path, inputs: _Inputs, progress: bool) -> dict[str, RunResult]:
    """Every student of ``plan`` on the main split, by row name (each run's ``folder`` set)."""
    kd = soft_labels is not None and config.kd
    runs = [(s, kd) for s in plan.students] + [(s, False) for s in plan.baselines if not (s in plan.students and not kd)]
    runs.sort(key=lambda r: feature_order(r[0]))
    figures = oracles.get(oracle_kind(main.name))
    trained = {}
    for student, with_kd in runs:
        cfg = student_config(config, student, with_kd)
        name, folder = run_label(student, with_kd), f"{student}{'_kd' if with_kd else ''}"
        result = classes_run(trials, main, cfg, out_dir / folder, soft_labels if with_kd else None,
                             teacher if with_kd else "", oracle_figures=figures, progress=progress,
                             inputs=inputs(cfg), name=name)
        result.folder = folder
        trained[name] = result
    return trained


def _controls(trials: Trials, main: RunSplit, best: RunResult, best_name: str, soft_labels: np.ndarray | None,
              teacher: str, oracle: Oracle | None, out_dir: Path, inputs: _Inputs, progress: bool,
              skipped: list[tuple[str, str]]) -> list[tuple[str, dict]]:
    """The rows of :func:`control_table` on the best student (each with its oracle's row when it has one)."""
    cfg, rows = best.fit.config, []
    for control in control_table(trials, main.name):
        if control.skip:
            skipped.append((control.what, control.skip))
            continue
        try:
            split = resolve_run_split(trials, control.split, cfg.seed, cfg.reject)
            result = classes_run(trials, split, cfg, out_dir / control.folder, soft_labels if cfg.kd else None,
                                 teacher, oracle=oracle, progress=progress, inputs=inputs(cfg))
        except SplitError as err:
            skipped.append((control.what, str(err)))
            continue
        rows.append((f"{best_name}, control: {control.what}", result.metrics))
        rows += [(f"{label} — {control.what}", m) for label, m in result.rows[1:]]
    return rows


def _lda_reference(trials: Trials, split: RunSplit, config: TrainConfig, out_dir: Path | None) -> dict:
    return lda_on_split(trials, split, config, out_dir)


def _power_reference(trials: Trials, split: RunSplit, config: TrainConfig, out_dir: Path | None) -> dict:
    return power_logreg_on_split(trials, split, config)


# the references beside the students in compare: (row, function, folder for its predictions or "")
REFERENCES = (("shrinkage LDA on the low-passed ERP (reference)", _lda_reference, "lda"),
              ("LogReg (avg power)", _power_reference, ""))


def _write_comparison(trials: Trials, out_dir: Path, rows: list[tuple[str, dict]], skipped: list[tuple[str, str]],
                      best_name: str, best: RunResult) -> None:
    """``report.md`` and ``comparison.json`` of :func:`compare`."""
    notes = [f"Best student by validation top-1: **{best_name}** (its run is this folder's model).",
             "Controls: *by block* holds out whole recording blocks (Li et al. 2020); *leave subject out* "
             "tests on an unseen subject (judged against the subject-agnostic oracle); *shuffled labels* permutes "
             "the labels within the training (and validation) part and must land near chance; the *drift probe* "
             "decodes from per-channel trial means and slopes and must sit at chance unless the design has a "
             "block confound."]
    main = best.split
    info = run_info(trials, best.fit.config, main.name, main.reason)
    write_text(out_dir / "report.md", report_markdown(rows, trials.source, notes, skipped, info))
    write_text(out_dir / "comparison.json", json.dumps(
        {"split": main.name, "split_reason": main.reason, "best": best_name, "best_folder": best.folder,
         "rows": [{"model": n, **m} for n, m in rows],
         "skipped": [{"what": n, "why": w} for n, w in skipped]}, indent=1))


def _adopt(folder: Path, out_dir: Path) -> None:
    """Copy a run's files into ``out_dir`` (the folder ``bci-train export`` reads), but its ``report.md``:
    the comparison's report takes that name there."""
    import shutil

    for item in folder.iterdir():
        if item.is_file() and item.name != "report.md":
            write_with(out_dir / item.name, lambda tmp, item=item: shutil.copyfile(item, tmp))
