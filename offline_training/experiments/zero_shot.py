"""Zero-shot evaluation of embedding models: k-way retrieval on held-out classes (or images), with the
phantom's retrieval oracle beside it, and the embedding objective's train → test → report.

Candidates are the held-out classes' mean image embeddings (``per="class"``: the phantom's by-class split)
or the held-out images' own embeddings (``per="image"``: THINGS-EEG2's test set, one image per concept).
A test trial is scored by the rank of its own candidate among the ``k`` by cosine similarity: top-1 and
top-5 with Wilson 95 % CIs and a binomial test against chance ``1/k``
(:func:`offline_training.experiments.evaluate.evaluate`, the classifiers' scorer, with candidates as classes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bci_stream.io.safe_write import write_text, write_with
from bci_stream.contract.trials import Trials
from offline_training.training.config import CANDIDATES, TrainConfig
from offline_training.training.contrastive import class_candidates, embed, retrieval_probabilities, unit_rows
from offline_training.experiments.evaluate import confusion_png, evaluate, learning_curve_png, report_markdown
from offline_training.training.image_embeddings import ImageEmbeddings
from offline_training.training.splits import Split, check_split, held_out_classes, make_split

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


def test_embedding_run(run_dir: Path, trials: Trials, test: np.ndarray, split_name: str, targets: np.ndarray,
                       per: str = "class", oracle: RetrievalOracle | None = None) -> tuple[dict, np.ndarray, Candidates]:
    """Retrieval test of the embedding model in ``run_dir`` on trials ``test``; ``targets`` ``(n_trials, dim)``
    each trial's image embedding. Writes ``predictions.npz``; returns ``(metrics, probabilities, candidates)``,
    the metrics with ``oracle_*`` figures, ``oracle_ratio`` and the oracle's own metrics under ``"oracle"``
    when a phantom ``oracle`` is given."""
    from offline_training.training.fit import load_model, model_inputs
    from offline_training.experiments.pipeline import oracle_kind

    model, normaliser, config, _ = load_model(run_dir)
    z = embed(model, normaliser(model_inputs(trials.subset(test), config, jitter=False)).astype(np.float32))
    candidates = held_out_candidates(trials, test, targets, per)
    probs = retrieval_probabilities(z, candidates.embeddings, model.logit_scale().item())
    write_with(run_dir / "predictions.npz", lambda tmp: np.savez_compressed(
        tmp, test=test, truth=candidates.truth, embeddings=z, probabilities=probs.astype(np.float32),
        candidates=np.array(candidates.names)))
    metrics = retrieval_metrics(probs, candidates, trials.subjects[test], split_name)
    metrics["logit_scale"] = model.logit_scale().item()
    if oracle is not None:
        agnostic = oracle_kind(split_name) == "subject-agnostic"
        om = oracle_retrieval(oracle, trials, test, config, candidates, split_name, agnostic)
        metrics.update(oracle_top1=om["top1"], oracle_top5=om["top5"], oracle_kind=om["oracle_kind"],
                       oracle_top1_ci=om["top1_ci"], oracle_ratio=metrics["top1"] / max(om["top1"], 1e-12), oracle=om)
    return metrics, probs, candidates


def train_and_test_embedding(trials: Trials, split_name: str, config: TrainConfig, run_dir: str | Path,
                             targets: ImageEmbeddings, oracle: RetrievalOracle | None = None,
                             split: Split | None = None, per: str = "class", resume: bool = False,
                             progress: bool = True, name: str | None = None) -> dict:
    """Fit an embedding model (``config.objective == "embedding"``) and test it by k-way zero-shot retrieval.

    ``split`` (explicit, e.g. THINGS-EEG2's test part) or ``split_name`` (default ``by-class``) says what is
    held out. Writes ``run_dir``: the model, ``split.json``, ``metrics.json`` (top-1/top-5 with Wilson CIs,
    ``k``, ``chance_top1``, and with a phantom ``oracle`` its figures on the same trials and candidates and
    ``oracle_ratio`` = top-1 / oracle top-1), ``predictions.npz``, ``report.md``, ``learning_curve.png`` (and
    ``confusion.png`` up to 40 candidates). ``run.json`` gets ``embedding`` (space, checkpoint hash, dim).
    """
    from offline_training.training.fit import fit
    from offline_training.experiments.pipeline import run_info, software_versions

    # 1. check inputs; the split, checked before any work
    if config.objective != "embedding":
        raise ValueError("train_and_test_embedding trains the embedding objective (TrainConfig(objective='embedding'))")
    run_dir = Path(run_dir)
    e = unit_rows(targets.for_trials(trials.image_ids))  # a missing image is said before any work
    if split is None:
        split = make_split(trials, split_name, seed=config.seed)
        why = "whole classes held out (zero-shot)" if split_name == "by-class" else "asked for"
    else:
        check_split(trials, split, split_name, config.seed)
        why = "given"
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "split.json", json.dumps({"name": split_name, "reason": why, "candidates": per,
                                                    **{k: np.asarray(v).tolist() for k, v in split.items()}}))
    # 2. fit
    t0 = time.perf_counter()
    info = fit(trials, split, config, run_dir, resume=resume, progress=progress, targets=e)
    seconds = time.perf_counter() - t0
    info.update(teacher=f"image embeddings {targets.space}", train_seconds=round(seconds, 1), split=split_name,
                split_reason=why, dropped=trials.dropped, software=software_versions(),
                embedding={"dim": targets.dim, "space": targets.space, "checkpoint_sha256": targets.checkpoint_sha256})
    write_text(run_dir / "run.json", json.dumps(info, indent=1))
    # 3. test: retrieval among the held-out candidates
    metrics, probs, candidates = test_embedding_run(run_dir, trials, np.asarray(split["test"]), split_name, e, per,
                                                    oracle)
    best = info["history"][info["best_epoch"] - 1] if info["best_epoch"] > 0 else {}
    unseen = np.isin(trials.labels[split["test"]], held_out_classes(trials, split)).all()
    metrics.update(split_reason=why, train_seconds=round(seconds, 1), val_top1=best.get("val_top1"),
                   embedding_space=targets.space, zero_shot=bool(unseen))
    label = name or f"{config.student} + InfoNCE{f' + {config.mse_weight:g} MSE' if config.mse_weight else ''}"
    rows = [(label, {k: v for k, v in metrics.items() if k != "oracle"})]
    if "oracle" in metrics:
        om = metrics.pop("oracle")
        rows.append((ORACLE_ROW.format("" if om["oracle_kind"] == "subject-agnostic" else
                                       ", each subject's gain and latency"), om))
    test = np.asarray(split["test"])
    # 4. write
    write_text(run_dir / "metrics.json", json.dumps(metrics, indent=1))
    title = f"{label} — {candidates.k}-way zero-shot, split '{split_name}'"
    if candidates.k <= 40:
        confusion_png(probs, candidates.truth, candidates.names, run_dir / "confusion.png",
                      f"{title} — top-1 {metrics['top1']:.3f} (n={len(test)})")
    learning_curve_png(info["history"], run_dir / "learning_curve.png", f"{label} — split '{split_name}' "
                       "(validation: retrieval among the validation classes)")
    notes = [zero_shot_note(metrics)]
    write_text(run_dir / "report.md", report_markdown(rows, trials.source, notes,
                                                       run_info=run_info(trials, config, split_name, why)))
    return metrics


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
