"""Students and reference methods on the same protocol folds (:mod:`offline_training.experiments.protocols`), scored
per subject as the field scores them: top-1 (balanced accuracy and ROC AUC with 95 % CIs for two classes),
and paired tests of each method against the best reference over subjects. Used by ``tools/bench_real.py``
and the real-data tests."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from bci_stream.contract.trials import Trials
from bci_stream.live.stats import roc_auc_interval, wilson_interval
from offline_training.experiments.protocols import Fold
from offline_training.training.splits import clean_training


@dataclass(frozen=True)
class StudentFit:
    """How a student is trained on a fold (fixed a priori, never chosen on test folds).

    Attributes
    ----------
    epochs : gradient epochs after the read-out's closed-form initialisation (CCANet) or from scratch.
    lr, weight_decay, batch_size : AdamW settings.
    val_fraction : stratified slice of the training part for early stopping (students without a
        closed-form read-out); 0: none.
    patience : early-stopping patience, epochs.
    threads : torch threads.
    """

    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 1e-2
    batch_size: int = 32
    val_fraction: float = 0.2
    patience: int = 8
    threads: int = 2
    seed: int = 0


def student_inputs(name: str, trials: Trials, crop: tuple[int, int]) -> tuple[np.ndarray, float]:
    """What student ``name`` reads from ``trials`` cropped to samples ``crop``, computed as ``bci-train fit``
    computes it (:func:`offline_training.experiments.pipeline.for_data`, :func:`offline_training.training.fit.model_inputs`):
    ``(n, ch, rows, columns)`` float32, and the rate of the columns (the erp kind's output rate; the
    input rate for spectrogram students, whose constructors do not take it)."""
    from offline_training.experiments.pipeline import for_data
    from offline_training.training.config import TrainConfig, feature_kind
    from offline_training.training.fit import model_inputs

    config = for_data(TrainConfig.for_student(name, crop_start=crop[0], crop_stop=crop[1]), trials, crop_given=True)
    rate = config.erp.out_sfreq() if feature_kind(config) == "erp" else trials.sfreq
    return model_inputs(trials, config, jitter=False), rate


def fit_student(name: str, x: np.ndarray, labels: np.ndarray, n_classes: int, sfreq: float, fit: StudentFit):
    """Train student ``name`` on its features ``x`` ``(n, ch, rows, t)`` (:func:`student_inputs`; ``sfreq``: their
    column rate) → ``(model, mean, std)`` (per-channel
    standardisation from the training trials, as :class:`offline_training.training.fit.Normaliser` does)."""
    import torch
    from torch import nn

    from offline_training.students import build_student, student_args

    torch.set_num_threads(fit.threads)
    torch.manual_seed(fit.seed)
    rng = np.random.default_rng(fit.seed)
    mean, std = x.mean((0, 3), keepdims=True)[0], x.std((0, 3), keepdims=True)[0] + 1e-6
    xn = (x - mean) / std
    model = build_student(name, **student_args(name, xn.shape[1:], n_classes, sfreq))
    val = np.array([], int)
    if hasattr(model, "init_readout"):
        model.init_readout(xn, labels)
    elif fit.val_fraction > 0:
        from sklearn.model_selection import train_test_split

        _, val = train_test_split(np.arange(len(xn)), test_size=fit.val_fraction, stratify=labels, random_state=fit.seed)
    train = np.setdiff1d(np.arange(len(xn)), val)
    opt = torch.optim.AdamW(model.parameters(), lr=fit.lr, weight_decay=fit.weight_decay)
    xt, yt = torch.as_tensor(xn), torch.as_tensor(labels, dtype=torch.long)
    best, best_state, stale = float("inf"), None, 0
    for _ in range(fit.epochs):
        model.train()
        order = rng.permutation(train)
        for i in range(0, len(order), fit.batch_size):
            b = order[i : i + fit.batch_size]
            if len(b) < 2:
                continue
            loss = nn.functional.cross_entropy(model(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if len(val):
            model.eval()
            with torch.no_grad():
                v = float(nn.functional.cross_entropy(model(xt[val]), yt[val]))
            if v < best:
                best, best_state, stale = v, {k: t.clone() for k, t in model.state_dict().items()}, 0
            else:
                stale += 1
                if stale >= fit.patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), mean, std


def student_probabilities(model, mean, std, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch.softmax(model(torch.as_tensor((x - mean) / std)), 1).numpy().astype(np.float64)


def run_folds(method: str, kind: str, trials: Trials, folds: list[Fold], crop: tuple[int, int],
              fit: StudentFit = StudentFit(), reject: float | None = None) -> dict:
    """Out-of-fold probabilities of one method over ``folds`` (each test trial is in one fold).

    ``kind``: "reference" (:func:`offline_training.experiments.references.build_reference`) or "student".
    ``reject``: training epochs whose peak-to-peak exceeds it (signal unit) are left out of training
    (:func:`clean_training`); test trials are all scored.
    Returns ``{"probabilities": (n, n_classes) with NaN rows for trials never tested, "seconds": training
    seconds summed over folds, "rejected": training epochs left out, summed over folds}``."""
    from offline_training.experiments.references import build_reference, reference_probabilities

    eeg = trials.eeg[..., crop[0] : crop[1]]
    probs = np.full((len(trials), trials.n_classes), np.nan)
    seconds, rejected = 0.0, 0
    if kind == "student":
        x, rate = student_inputs(method, trials, crop)
    for fold in folds:
        train = clean_training(eeg, trials.labels, fold.train, reject)
        rejected += len(fold.train) - len(train)
        fold = Fold(fold.subject, fold.name, train, fold.test)
        t0 = time.perf_counter()
        if kind == "reference":
            model = build_reference(method, trials.sfreq, trials.class_names)
            model.fit(eeg[fold.train].astype(np.float64), trials.labels[fold.train])
            seconds += time.perf_counter() - t0
            probs[fold.test] = reference_probabilities(model, eeg[fold.test].astype(np.float64), trials.n_classes)
        else:
            model, mean, std = fit_student(method, x[fold.train], trials.labels[fold.train], trials.n_classes, rate, fit)
            seconds += time.perf_counter() - t0
            probs[fold.test] = student_probabilities(model, mean, std, x[fold.test])
    return {"probabilities": probs, "seconds": seconds, "rejected": rejected}


def subject_scores(probs: np.ndarray, labels: np.ndarray) -> dict:
    """top-1 with its Wilson CI; for two classes also balanced accuracy and ROC AUC (class 1 positive) with CI."""
    pred = probs.argmax(1)
    hits, n = int((pred == labels).sum()), len(labels)
    out = {"top1": hits / n, "top1_ci": list(wilson_interval(hits, n)), "n": n}
    if probs.shape[1] == 2:
        auc, lo, hi = roc_auc_interval(labels, probs[:, 1])
        out.update(balanced_accuracy=float(balanced_accuracy_score(labels, pred)), auc=auc, auc_ci=[lo, hi])
    return out


def score(result: dict, trials: Trials) -> dict:
    """Per-subject scores of :func:`run_folds`'s result and their mean ± sd over subjects."""
    probs = result["probabilities"]
    tested = ~np.isnan(probs).any(1)
    per = {}
    for s in np.unique(trials.subjects[tested]):
        m = tested & (trials.subjects == s)
        per[int(s)] = subject_scores(probs[m], trials.labels[m])
    keys = [k for k in ("top1", "balanced_accuracy", "auc") if k in next(iter(per.values()))]
    return {"per_subject": per, "seconds": round(result["seconds"], 1),
            "mean": {k: float(np.mean([p[k] for p in per.values()])) for k in keys},
            "sd": {k: float(np.std([p[k] for p in per.values()], ddof=1)) if len(per) > 1 else float("nan") for k in keys},
            "pooled": subject_scores(probs[tested], trials.labels[tested])}
