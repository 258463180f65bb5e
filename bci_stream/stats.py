"""Proportions with their uncertainty: Wilson intervals and exact binomial tests against chance.

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
