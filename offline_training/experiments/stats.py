"""Paired statistics for comparing models on the same test trials.

- :func:`mcnemar`: exact McNemar test on shared test trials (two-sided binomial on the discordant pairs);
  pooling over seeds sums the discordant counts (each seed's test trials are the same trials).
- :func:`paired_differences`: per-subject (or per-seed) differences of top-1 with a t interval and the
  two-sided paired t-test p-value, plus the sign-flip (exact permutation) p-value for few pairs.

Accuracies themselves carry Wilson intervals (:func:`offline_training.experiments.evaluate.wilson_interval`).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact McNemar test of "A and B are right equally often" on paired boolean outcomes ``(n,)``
    (or stacked over seeds, ``(n_seeds, n)``). Returns ``{"a_only", "b_only", "n", "p"}``."""
    a, b = np.asarray(correct_a, bool).ravel(), np.asarray(correct_b, bool).ravel()
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    n = a_only + b_only
    p = 1.0 if n == 0 else float(stats.binomtest(a_only, n, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "n": int(a.size), "p": p}


def paired_differences(a: np.ndarray, b: np.ndarray) -> dict:
    """Differences ``a - b`` of paired figures (e.g. top-1 per subject): mean, 95 % t interval, paired
    t-test p and exact sign-flip permutation p (two-sided). NaN intervals with fewer than 2 pairs."""
    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    out = {"mean": float(d.mean()) if n else float("nan"), "n": n, "diffs": d.tolist()}
    if n < 2 or np.allclose(d, d[0]):
        out.update(ci=[float("nan"), float("nan")], p_t=float("nan") if n < 2 else (0.0 if d[0] else 1.0),
                   p_perm=float("nan") if n < 2 else 2.0 ** (1 - n) if d[0] else 1.0)
        return out
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    out["ci"] = [float(d.mean() - half), float(d.mean() + half)]
    out["p_t"] = float(stats.ttest_1samp(d, 0.0).pvalue)
    if n <= 16:
        signs = np.array(list(itertools.product((-1.0, 1.0), repeat=n)))
        null = np.abs((signs * d).mean(1))
        out["p_perm"] = float((null >= abs(d.mean()) - 1e-12).mean())
    else:
        out["p_perm"] = float("nan")
    return out


def describe_comparison(name_a: str, name_b: str, seeds: list[int], mc: dict, per_subject: dict) -> str:
    """One markdown line: Δtop-1 over subjects (mean over seeds) with its CI and p, and McNemar pooled over seeds."""
    lo, hi = per_subject["ci"]
    ci = f"[{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else "n/a"
    return (f"| {name_a} vs {name_b} | {len(seeds)} | {per_subject['mean']:+.3f} | {ci} | "
            f"{_p(per_subject.get('p_t'))} / {_p(per_subject.get('p_perm'))} | {mc['a_only']} / {mc['b_only']} | "
            f"{_p(mc['p'])} |")


def comparison_header() -> str:
    return ("| comparison (A vs B) | seeds | Δ top-1 (A − B), mean over subjects | 95 % CI | p (paired t / sign-flip) | "
            "test trials only A / only B right (all seeds) | p (McNemar) |\n|---|---|---|---|---|---|---|")


def _p(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.2g}" if value >= 1e-4 else "< 1e-4"
