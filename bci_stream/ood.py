"""Out-of-distribution monitor: is the live input like what the model was trained on?

The decoder's features are z-scores against the training data's normalisation statistics (the
card's ``norm_mean``/``norm_std``), so in distribution their mean is about 0 and their root mean
square about 1. A stream in volts read as microvolts, unfiltered drift, a missing reference or a
wrong montage moves both far away. Two sums over the feature array a decision (a dot product and a
sum: microseconds) and an exponential average over the last few decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OodLimits:
    """When the input counts as out of distribution.

    Attributes
    ----------
    bias : largest ``|mean z|`` still in distribution (training data: 0).
    rms_high, rms_low : range of the root mean square z still in distribution (training data: 1).
    decisions : decisions the running average spans (its half-life is about half of it).
    """

    bias: float = 1.0
    rms_high: float = 4.0
    rms_low: float = 0.25
    decisions: int = 10


class OodMonitor:
    """Running mean and RMS of the normalised features; :attr:`warning` says what is wrong."""

    def __init__(self, limits: OodLimits = OodLimits(), enabled: bool = True):
        self.limits = limits
        self.enabled = enabled
        self.bias = 0.0
        self.rms = 1.0
        self.n = 0
        self._alpha = 2.0 / (limits.decisions + 1)

    def reset(self) -> None:
        self.bias, self.rms, self.n = 0.0, 1.0, 0

    def update(self, z: np.ndarray) -> None:
        """Add one decision's normalised features (any shape, contiguous float32)."""
        if not self.enabled:
            return
        flat = z.reshape(-1)
        size = flat.size
        mean = float(flat.sum()) / size
        ms = float(np.dot(flat, flat)) / size
        if not math.isfinite(ms):
            return  # the decision is withheld elsewhere; keep the average finite
        a = 1.0 if self.n == 0 else self._alpha
        self.bias += a * (mean - self.bias)
        self.rms = math.sqrt(max(0.0, self.rms**2 + a * (ms - self.rms**2)))
        self.n += 1

    @property
    def warning(self) -> str:
        """Empty when the input looks like the training data, else what is off and likely causes."""
        if not self.enabled or self.n == 0:
            return ""
        lim = self.limits
        if self.rms > lim.rms_high or abs(self.bias) > lim.bias:
            direction = "larger" if self.bias > 0 else "smaller"
            return (f"input far outside the training data (features mean z {self.bias:+.1f}, rms {self.rms:.1f}): "
                    f"{direction} than the model saw — check the unit (volts vs microvolts), filters and reference")
        if self.rms < lim.rms_low:
            return f"input nearly constant compared with the training data (features rms z {self.rms:.2f})"
        return ""
