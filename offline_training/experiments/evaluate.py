"""Evaluation: top-k with Wilson 95 % CIs and a binomial test against chance, macro-F1, Cohen's kappa, per
subject; confusion PNG with counts; learning curve PNG; a Table-1-style report that names its split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

from bci_stream.io.safe_write import write_with
from bci_stream.live.stats import (  # one home, used here and live
    chance_p_value,
    roc_auc_interval,
    wilson_interval,
)

TOP_K = (1, 3, 5)


def top_k_accuracy(probabilities: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the ``k`` most probable classes."""
    if len(labels) == 0:
        return float("nan")
    k = min(k, probabilities.shape[1])
    top = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def scores(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """top1/top3/top5 with ``<key>_ci`` (Wilson 95 %) and ``<key>_p`` (binomial vs chance), macro_f1,
    kappa and n for one set of predictions; top-k with ``k >= n_classes`` is ``None`` (not a figure)."""
    pred = probabilities.argmax(1)
    n_classes = probabilities.shape[1]
    n = int(len(labels))
    out: dict = {}
    for k in TOP_K:
        if k > 1 and k >= n_classes:  # top-k of k >= classes is 1 by construction: not a figure
            out[f"top{k}"], out[f"top{k}_ci"], out[f"top{k}_p"] = None, None, None
            continue
        acc = top_k_accuracy(probabilities, labels, k)
        hits = int(round(acc * n)) if n else 0
        out[f"top{k}"] = acc
        out[f"top{k}_ci"] = list(wilson_interval(hits, n))
        out[f"top{k}_p"] = chance_p_value(hits, n, min(1.0, k / n_classes))
    if n_classes == 2:  # binary tasks: balanced accuracy and ROC AUC (class 1 positive) with a 95 % CI
        auc, lo, hi = roc_auc_interval(labels, probabilities[:, 1])
        both = len(np.unique(labels)) == 2  # balanced accuracy, like AUC, needs both classes among the trials
        out.update(balanced_accuracy=float(balanced_accuracy_score(labels, pred)) if both else float("nan"), auc=auc,
                   auc_ci=[lo, hi])
    out.update(
        macro_f1=float(f1_score(labels, pred, average="macro", labels=np.arange(n_classes), zero_division=0)),
        kappa=float(cohen_kappa_score(labels, pred)) if len(np.unique(labels)) > 1 else float("nan"),
        n=n,
    )
    return out


def evaluate(probabilities: np.ndarray, labels: np.ndarray, subjects: np.ndarray, split: str) -> dict:
    """Scores over all test trials (with CIs and p-values), per subject, and the mean ± std over subjects.

    Returns ``{"split", "top1", "top1_ci", "top1_p", ..., "macro_f1", "kappa", "n", "chance_top1",
    "n_subjects", "per_subject": {s: scores}, "subject_mean": {...}, "subject_std": {...}}``
    (``subject_std`` is ``None`` with one subject: there is no spread to report).
    """
    out = {"split": split, **scores(probabilities, labels), "chance_top1": 1.0 / probabilities.shape[1]}
    per = {int(s): scores(probabilities[subjects == s], labels[subjects == s]) for s in np.unique(subjects)}
    out["per_subject"] = per
    out["n_subjects"] = len(per)
    keys = tuple(k for k in ("top1", "top3", "top5", "macro_f1", "kappa") if out[k] is not None)
    out["subject_mean"] = {k: _defined(np.mean, [p[k] for p in per.values()]) for k in keys}
    out["subject_std"] = {k: _defined(np.std, [p[k] for p in per.values()]) for k in keys} if len(per) > 1 else None
    return out


def _defined(stat, values: list[float]) -> float:
    """``stat`` of the defined (finite) values; NaN when none is (kappa is undefined for a subject whose
    test trials are all of one class) — without numpy's "Mean of empty slice" warning."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(stat(finite)) if finite.size else float("nan")


def confusion_png(probabilities: np.ndarray, labels: np.ndarray, class_names: list[str], path: str | Path,
                  title: str) -> Path:
    """Row-normalised confusion matrix as a PNG; each cell shows its count, each row label its total
    (so a bright cell from 2 trials reads as 2 trials), the colour scale marks chance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(class_names)
    counts = confusion_matrix(labels, probabilities.argmax(1), labels=np.arange(n))
    totals = counts.sum(1)
    cm = counts / np.maximum(totals[:, None], 1)
    size = max(6, 0.22 * n + 3)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(cm, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), [f"{c} (n={t})" for c, t in zip(class_names, totals)], fontsize=7)
    if n <= 40:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=6 if n > 15 else 9,
                            color="black" if cm[i, j] > 0.6 else "white")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (trials in the test split)")
    ax.set_title(title, fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.04, label="fraction of true class (counts in cells)")
    bar.ax.axhline(1.0 / max(n, 1), color="red", linewidth=2)
    bar.ax.text(1.5, 1.0 / max(n, 1), " chance", color="red", va="center", fontsize=7, transform=bar.ax.transData)
    fig.tight_layout()
    path = Path(path)
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)
    return path


def learning_curve_png(history: list[dict], path: str | Path, title: str, chance: float | None = None) -> Path:
    """Train/validation loss and validation top-1 per epoch (a run's ``history``) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
    ax1.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend(fontsize=8)
    ax2.plot(epochs, [h["val_top1"] for h in history], "o-", color="C2", label="validation top-1")
    if chance is not None:
        ax2.axhline(chance, color="red", linestyle="--", label="chance")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("top-1")
    ax2.set_ylim(0, 1)
    ax2.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def _ci(m: dict, key: str) -> str:
    k = int(key[3:])
    if k > 1 and m.get("chance_top1") and k * m["chance_top1"] >= 1:
        return f"— ({round(1 / m['chance_top1'])} classes)"
    lo, hi = m.get(f"{key}_ci", (float("nan"), float("nan")))
    return f"{m[key]:.3f} [{lo:.2f}, {hi:.2f}]"


def _p(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.2g}" if value >= 1e-4 else "< 1e-4"


def _per_subject(m: dict, key: str) -> str:
    if not m.get("subject_std"):
        return f"n/a ({m.get('n_subjects', 1)} subject)"
    return f"{m['subject_mean'][key]:.3f} ± {m['subject_std'][key]:.3f}"


def report_markdown(rows: list[tuple[str, dict]], data: str, notes: list[str] | None = None,
                    skipped: list[tuple[str, str]] | None = None, run_info: dict | None = None) -> str:
    """A table laid out like the seed's Table 1, one row per model with the split named on every row:
    pooled top-k with Wilson 95 % CIs, the binomial p-value of top-1 against chance, and the mean ± std
    over subjects ("n/a" with one subject). ``skipped``: controls that did not run, with why;
    ``run_info``: the data summary, split, configuration and software versions, listed below the table."""
    lines = [f"# Evaluation report\n\nData: `{data}`\n",
             "| model | split | top-1 [95 % CI] | p (top-1 > chance) | top-3 [95 % CI] | top-5 [95 % CI] | "
             "macro-F1 | kappa | top-1 per subject | n test |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in rows:
        lines.append(f"| {name} | {m['split']} | {_ci(m, 'top1')} | {_p(m.get('top1_p'))} | {_ci(m, 'top3')} | "
                     f"{_ci(m, 'top5')} | {m['macro_f1']:.3f} | {m['kappa']:.3f} | {_per_subject(m, 'top1')} | {m['n']} |")
    binary = [(name, m) for name, m in rows if m.get("auc") is not None]
    if binary:
        lines.append("\n| model | split | ROC AUC [95 % CI] | balanced accuracy |\n|---|---|---|---|")
        lines += [f"| {name} | {m['split']} | {m['auc']:.3f} [{m['auc_ci'][0]:.2f}, {m['auc_ci'][1]:.2f}] | "
                  f"{m['balanced_accuracy']:.3f} |" for name, m in binary]
    if rows:
        chance = rows[0][1]["chance_top1"]
        lines.append(f"\nPooled over test trials; 95 % CIs are Wilson score intervals; p is the one-sided exact "
                     f"binomial test of top-1 against chance {chance:.3f} (top-5 chance {min(1.0, 5 * chance):.3f}). "
                     "Per subject: mean ± std over subjects.")
    if skipped:
        lines.append("\nControls not run:\n")
        lines += [f"- {name}: {why}" for name, why in skipped]
    for note in notes or []:
        lines.append(f"\n{note}")
    if run_info:
        lines.append("\n## Run\n")
        for key, value in run_info.items():
            if isinstance(value, dict):
                import json

                lines.append(f"- {key}:\n\n```json\n{json.dumps(value, indent=1, default=str)}\n```")
            else:
                lines.append(f"- {key}: {value}")
    return "\n".join(lines) + "\n"
