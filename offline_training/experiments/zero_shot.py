"""Zero-shot evaluation of embedding models: k-way retrieval on held-out classes (or images), with the
phantom's retrieval oracle beside it, and the embedding objective's train → test → report.

Candidates are the held-out classes' mean image embeddings (``per="class"``: the phantom's by-class split)
or the held-out images' own embeddings (``per="image"``: THINGS-EEG2's test set, one image per concept).
A test trial is scored by the rank of its own candidate among the ``k`` by cosine similarity: top-1 and
top-5 with Wilson 95 % CIs and a binomial test against chance ``1/k``
(:func:`offline_training.experiments.evaluate.evaluate`, the classifiers' scorer, with candidates as classes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bci_stream.contract.trials import Trials
from offline_training.experiments.evaluate import evaluate
from offline_training.experiments.run import Outcome
from offline_training.training.config import CANDIDATES, TrainConfig
from offline_training.training.contrastive import class_candidates, embed, retrieval_probabilities, unit_rows
from offline_training.training.image_embeddings import ImageEmbeddings
from offline_training.training.splits import RunSplit, Split, held_out_classes, resolve_run_split

# trials (cropped as the student sees them), candidate embeddings (k, dim) not renormalised, subject-agnostic?
RetrievalOracle = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Candidates:
    """The k-way retrieval problem of a test set.

    Attributes
    ----------
    embeddings : ``(k, dim)`` float32, not renormalised (class means: ``W`` of a mean is the mean template).
    names : one per candidate (class names, or image ids).
    truth : ``(n_test,)`` index of each test trial's own candidate.
    per : "class" or "image".
    """

    embeddings: np.ndarray
    names: list[str]
    truth: np.ndarray
    per: str

    @property
    def k(self) -> int:
        return len(self.names)


def held_out_candidates(trials: Trials, test: np.ndarray, targets: np.ndarray, per: str = "class") -> Candidates:
    """The candidates of the test trials ``test``: their classes' mean embeddings (``per="class"``) or their
    distinct images' embeddings (``"image"``); ``targets`` ``(n_trials, dim)``: each trial's image embedding."""
    if per not in CANDIDATES:
        raise ValueError(f"candidates must be one of {', '.join(CANDIDATES)}; got {per!r}")
    labels, ids = trials.labels[test], trials.image_ids[test]
    if per == "class":
        classes = np.unique(labels)
        groups = np.unique(ids, return_inverse=True)[1].ravel()
        return Candidates(class_candidates(targets[test], labels, groups, classes),
                          [trials.class_names[k] for k in classes], np.searchsorted(classes, labels), per)
    images, first, truth = np.unique(ids, return_index=True, return_inverse=True)
    return Candidates(targets[test][first], [str(i) for i in images], truth.ravel(), per)


def retrieval_metrics(probabilities: np.ndarray, candidates: Candidates, subjects: np.ndarray, split: str) -> dict:
    """:func:`~offline_training.experiments.evaluate.evaluate` of retrieval probabilities ``(n, k)``, plus ``k`` and
    ``candidates`` (what was retrieved among)."""
    out = evaluate(probabilities, candidates.truth, subjects, split)
    out.update(k=candidates.k, candidates=candidates.per)
    return out


def oracle_retrieval(oracle: RetrievalOracle, trials: Trials, test: np.ndarray, config: TrainConfig,
                     candidates: Candidates, split: str, subject_agnostic: bool = False) -> dict:
    """The phantom's retrieval oracle on the same test trials, crop and candidates."""
    cropped = trials.subset(test).crop(config.crop_start, config.crop_stop)
    probs = oracle(cropped, candidates.embeddings, subject_agnostic=subject_agnostic)
    out = retrieval_metrics(probs, candidates, trials.subjects[test], split)
    out["oracle_kind"] = "subject-agnostic" if subject_agnostic else "full"
    return out


ORACLE_ROW = "oracle (knows W: embedding → evoked response, the components, the noise model{})"


class EmbeddingTest:
    """The embedding objective's test and report: k-way retrieval among the held-out ``per`` candidates
    ("class" or "image") of the test trials, with the phantom's retrieval ``oracle`` beside it when given.
    ``targets``: the image embeddings trained against."""

    max_confusion = 40

    def __init__(self, targets: ImageEmbeddings, per: str = "class", oracle: RetrievalOracle | None = None):
        self.targets, self.per, self.oracle = targets, per, oracle

    def split_entries(self) -> dict:
        return {"candidates": self.per}

    def info_entries(self, config: TrainConfig) -> dict:
        t = self.targets
        return {"teacher": f"image embeddings {t.space}",
                "embedding": {"dim": t.dim, "space": t.space, "checkpoint_sha256": t.checkpoint_sha256}}

    def label(self, config: TrainConfig) -> str:
        return f"{config.student} + InfoNCE{f' + {config.mse_weight:g} MSE' if config.mse_weight else ''}"

    def test(self, fitted, trials: Trials, split: Split | RunSplit) -> Outcome:
        """Retrieval of the model in memory on the test trials; the metrics carry ``oracle_*`` figures and
        ``oracle_ratio`` when a phantom oracle is given (its own row in ``extra_rows``)."""
        from offline_training.experiments.pipeline import oracle_kind

        test = np.asarray(split.test)
        e = unit_rows(self.targets.for_trials(trials.image_ids))
        model, scale = fitted.model, fitted.model.logit_scale().item()
        z = embed(model, fitted.inputs(trials.subset(test)))
        candidates = held_out_candidates(trials, test, e, self.per)
        probs = retrieval_probabilities(z, candidates.embeddings, scale)
        metrics = retrieval_metrics(probs, candidates, trials.subjects[test], split.name)
        metrics.update(logit_scale=scale, embedding_space=self.targets.space,
                       zero_shot=bool(np.isin(trials.labels[test], held_out_classes(trials, split.parts)).all()))
        arrays = {"test": test, "truth": candidates.truth, "embeddings": z, "probabilities": probs.astype(np.float32),
                  "candidates": np.array(candidates.names)}
        outcome = Outcome(metrics, probs, candidates.truth, candidates.names, arrays)
        if self.oracle is not None:
            agnostic = oracle_kind(split.name) == "subject-agnostic"
            om = oracle_retrieval(self.oracle, trials, test, fitted.config, candidates, split.name, agnostic)
            metrics.update(oracle_top1=om["top1"], oracle_top5=om["top5"], oracle_kind=om["oracle_kind"],
                           oracle_top1_ci=om["top1_ci"], oracle_ratio=metrics["top1"] / max(om["top1"], 1e-12))
            outcome.extra_rows.append((ORACLE_ROW.format("" if agnostic else ", each subject's gain and latency"), om))
        return outcome

    def titles(self, label: str, outcome: Outcome, split: RunSplit) -> tuple[str, str, float | None]:
        return (f"{label} — {len(outcome.names)}-way zero-shot, split '{split.name}'",
                f"{label} — split '{split.name}' (validation: retrieval among the validation classes)", None)

    def notes(self, metrics: dict) -> list[str]:
        return [zero_shot_note(metrics)]


def train_and_test_embedding(trials: Trials, split_name: str, config: TrainConfig, run_dir: str | Path,
                             targets: ImageEmbeddings, oracle: RetrievalOracle | None = None,
                             split: Split | None = None, per: str = "class", resume: bool = False,
                             progress: bool = True, name: str | None = None) -> dict:
    """Fit an embedding model (``config.objective == "embedding"``) and test it by k-way zero-shot retrieval:
    :func:`~offline_training.experiments.run.run` with the embedding objective and :class:`EmbeddingTest`.

    ``split`` (explicit, e.g. THINGS-EEG2's test part) or ``split_name`` (default ``by-class``) says what is
    held out. Writes ``run_dir`` once: the model, ``split.json``, ``metrics.json`` (top-1/top-5 with Wilson
    CIs, ``k``, ``chance_top1``, and with a phantom ``oracle`` its figures on the same trials and candidates
    and ``oracle_ratio`` = top-1 / oracle top-1), ``predictions.npz``, ``report.md``, ``learning_curve.png``
    (and ``confusion.png`` up to 40 candidates). ``run.json`` gets ``embedding`` (space, checkpoint hash, dim).
    """
    from offline_training.experiments.run import run
    from offline_training.training.objectives import EmbeddingObjective

    # 1. check inputs; the split, checked before any work
    if config.objective != "embedding":
        raise ValueError("train_and_test_embedding trains the embedding objective (TrainConfig(objective='embedding'))")
    e = unit_rows(targets.for_trials(trials.image_ids))  # a missing image is said before any work
    why = "whole classes held out (zero-shot)" if split_name == "by-class" else "asked for"
    resolved = resolve_run_split(trials, split_name, config.seed, config.reject, given=split,
                                 reason="" if split is not None else why)
    result = run(trials, resolved, config, run_dir, EmbeddingObjective(config, e), EmbeddingTest(targets, per, oracle),
                 resume=resume, progress=progress, name=name)
    return result.metrics


def zero_shot_note(metrics: dict) -> str:
    """One paragraph for a report: what was retrieved among, and the ratio to the oracle."""
    what = ("the held-out classes' mean image embeddings" if metrics["candidates"] == "class"
            else "the held-out images' embeddings")
    text = (f"Zero-shot retrieval: each test trial's predicted embedding ranks the {metrics['k']} candidates "
            f"({what}, space `{metrics.get('embedding_space', '')}`) by cosine similarity; chance top-1 "
            f"{1 / metrics['k']:.3f}. "
            + ("No test class was seen in training." if metrics.get("zero_shot") else
               "Test classes were also trained on (other images): not zero-shot."))
    if "oracle_ratio" in metrics:
        text += (f" Student top-1 / oracle top-1 = {metrics['top1']:.3f} / {metrics['oracle_top1']:.3f} = "
                 f"**{metrics['oracle_ratio']:.2f}** (the oracle is the matched filter with the true map W).")
    return text


def print_zero_shot(metrics: dict) -> None:
    """One line: top-1/top-5 with CIs, chance, and the oracle."""
    lo, hi = metrics["top1_ci"]
    lo5, hi5 = metrics["top5_ci"]
    line = (f"{metrics['k']}-way zero-shot, test split '{metrics['split']}': top-1 {metrics['top1']:.3f} "
            f"[95 % CI {lo:.2f}-{hi:.2f}], p = {metrics['top1_p']:.2g} vs chance {metrics['chance_top1']:.3f}; "
            f"top-5 {metrics['top5']:.3f} [95 % CI {lo5:.2f}-{hi5:.2f}] (n={metrics['n']})")
    if "oracle_top1" in metrics:
        olo, ohi = metrics["oracle_top1_ci"]
        line += (f"; oracle top-1 {metrics['oracle_top1']:.3f} [{olo:.2f}-{ohi:.2f}], "
                 f"ratio {metrics['oracle_ratio']:.2f}, {metrics['top1'] / metrics['chance_top1']:.1f}x chance")
    print(line)
