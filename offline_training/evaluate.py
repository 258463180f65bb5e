"""Evaluation: top-k, macro-F1, Cohen's kappa, per subject; confusion PNG; a Table-1-style report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score


def top_k_accuracy(probabilities: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the ``k`` most probable classes."""
    if len(labels) == 0:
        return float("nan")
    k = min(k, probabilities.shape[1])
    top = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def scores(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """top1/top3/top5, macro_f1, kappa and n for one set of predictions."""
    pred = probabilities.argmax(1)
    n_classes = probabilities.shape[1]
    return {
        "top1": top_k_accuracy(probabilities, labels, 1),
        "top3": top_k_accuracy(probabilities, labels, 3),
        "top5": top_k_accuracy(probabilities, labels, 5),
        "macro_f1": float(f1_score(labels, pred, average="macro", labels=np.arange(n_classes), zero_division=0)),
        "kappa": float(cohen_kappa_score(labels, pred)) if len(np.unique(labels)) > 1 else float("nan"),
        "n": int(len(labels)),
    }


def evaluate(probabilities: np.ndarray, labels: np.ndarray, subjects: np.ndarray, split: str) -> dict:
    """Scores over all test trials, per subject, and the mean ± std over subjects.

    Returns ``{"split", "top1", "top3", "top5", "macro_f1", "kappa", "n", "chance_top1",
    "per_subject": {s: scores}, "subject_mean": {...}, "subject_std": {...}}``.
    """
    out = {"split": split, **scores(probabilities, labels), "chance_top1": 1.0 / probabilities.shape[1]}
    per = {int(s): scores(probabilities[subjects == s], labels[subjects == s]) for s in np.unique(subjects)}
    out["per_subject"] = per
    keys = ("top1", "top3", "top5", "macro_f1", "kappa")
    out["subject_mean"] = {k: float(np.nanmean([p[k] for p in per.values()])) for k in keys}
    out["subject_std"] = {k: float(np.nanstd([p[k] for p in per.values()])) for k in keys}
    return out


def confusion_png(probabilities: np.ndarray, labels: np.ndarray, class_names: list[str], path: str | Path,
                  title: str) -> Path:
    """Row-normalised confusion matrix as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(class_names)
    cm = confusion_matrix(labels, probabilities.argmax(1), labels=np.arange(n)).astype(float)
    cm /= np.maximum(cm.sum(1, keepdims=True), 1)
    size = max(6, 0.22 * n + 3)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(cm, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04, label="fraction of true class")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report_markdown(rows: list[tuple[str, dict]], data: str, notes: list[str] | None = None) -> str:
    """A table laid out like the seed's Table 1: one row per model, mean ± std over subjects, with
    the split named on every row."""
    lines = [f"# Evaluation report\n\nData: `{data}`\n",
             "| model | split | top-1 | top-3 | top-5 | macro-F1 | kappa | pooled top-1 | n test |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, m in rows:
        def cell(key: str, m: dict = m) -> str:
            return f"{m['subject_mean'][key]:.3f} ± {m['subject_std'][key]:.3f}"

        lines.append(f"| {name} | {m['split']} | {cell('top1')} | {cell('top3')} | {cell('top5')} | "
                     f"{cell('macro_f1')} | {cell('kappa')} | {m['top1']:.3f} | {m['n']} |")
    lines.append("\nMean ± std over subjects; chance top-1 = "
                 f"{rows[0][1]['chance_top1']:.3f}, top-5 = {min(1.0, 5 * rows[0][1]['chance_top1']):.3f}." if rows else "")
    for note in notes or []:
        lines.append(f"\n{note}")
    return "\n".join(lines) + "\n"
