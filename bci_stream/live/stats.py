"""Proportions with their uncertainty: Wilson intervals, exact binomial tests against chance, and the
ROC AUC of a binary decision with its Hanley-McNeil interval.

One home for the trainer's reports and the live app's running event-mode accuracy.
"""

from __future__ import annotations

import math


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion (Wilson 1927); ``(nan, nan)`` when ``n == 0``."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def chance_p_value(successes: int, n: int, chance: float) -> float:
    """One-sided exact binomial p-value of ``successes`` out of ``n`` against ``chance``."""
    from scipy.stats import binomtest

    if n == 0 or chance >= 1:
        return float("nan") if n == 0 else 1.0
    return float(binomtest(successes, n, chance, alternative="greater").pvalue)


def roc_auc_interval(labels, scores, z: float = 1.959964) -> tuple[float, float, float]:
    """ROC AUC of ``scores`` (higher: class 1) against binary ``labels``, with a Hanley & McNeil (1982)
    95 % interval: ``(auc, low, high)``; all nan unless both classes are present.

    The AUC is the Mann-Whitney probability that a class-1 trial scores above a class-0 one (ties
    count half), from scipy's ranks, as ``sklearn.metrics.roc_auc_score`` gives it."""
    import numpy as np
    from scipy.stats import rankdata

    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    n1, n0 = int(labels.sum()), int((~labels).sum())
    if n1 == 0 or n0 == 0:
        return float("nan"), float("nan"), float("nan")
    ranks = rankdata(scores)
    auc = float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    se = math.sqrt(max(auc * (1 - auc) + (n1 - 1) * (q1 - auc * auc) + (n0 - 1) * (q2 - auc * auc), 0.0) / (n1 * n0))
    return auc, max(0.0, auc - z * se), min(1.0, auc + z * se)
