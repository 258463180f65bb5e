"""Out-of-distribution monitor: is the live input like what the model was trained on?

The decoder's features are z-scores against the training data's normalisation statistics (the
card's ``norm_mean``/``norm_std``), so in distribution their mean is about 0 and their root mean
square about 1. A stream in volts read as microvolts, unfiltered drift, a missing reference or a
wrong montage moves both far away. Two sums over the feature array a decision (a dot product and a
sum: microseconds) and an exponential average over the last few decisions.

An episode out of distribution is one warning: it begins when the average crosses a limit, keeps the
message it began with (the live figures are on every decision, not in the message) and ends only
when the average is back inside the limits by a margin (``OodLimits.clear_margin``), so figures
hovering at a limit do not make a warning per decision.
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
    clear_margin : an episode ends when every figure is this fraction inside its limit (e.g. rms
        below 0.75 x ``rms_high`` and above ``rms_low`` / 0.75): the hysteresis.
    """

    bias: float = 1.0
    rms_high: float = 4.0
    rms_low: float = 0.25
    decisions: int = 10
    clear_margin: float = 0.75


class OodMonitor:
    """Running mean and RMS of the normalised features; :attr:`warning` says what is wrong."""

    def __init__(self, limits: OodLimits = OodLimits(), enabled: bool = True):
        self.limits = limits
        self.enabled = enabled
        self.bias = 0.0
        self.rms = 1.0
        self.n = 0
        self._alpha = 2.0 / (limits.decisions + 1)
        self._warning = ""  # the current episode's message

    def reset(self) -> None:
        """Forget the average and any episode (after a gap in the stream)."""
        self.bias, self.rms, self.n = 0.0, 1.0, 0
        self._warning = ""

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
        if not self._warning:
            self._warning = self._onset()
        elif self._inside(self.limits.clear_margin):
            self._warning = ""

    def _inside(self, margin: float) -> bool:
        """Every figure within its limit, ``margin`` (<= 1) of the way in."""
        lim = self.limits
        return self.rms < margin * lim.rms_high and abs(self.bias) < margin * lim.bias and self.rms > lim.rms_low / margin

    def _onset(self) -> str:
        """The warning an episode begins with ("" while the figures are within the limits)."""
        lim = self.limits
        if self.rms > lim.rms_high or abs(self.bias) > lim.bias:
            direction = "larger" if self.bias > 0 else "smaller"
            return (f"input far outside the training data (features mean z {self.bias:+.1f}, rms {self.rms:.1f} "
                    f"when it began): {direction} than the model saw — check the unit (volts vs microvolts), "
                    "filters and reference")
        if self.rms < lim.rms_low:
            return f"input nearly constant compared with the training data (features rms z {self.rms:.2f} when it began)"
        return ""

    @property
    def warning(self) -> str:
        """Empty when the input looks like the training data, else what is off and likely causes: one
        message per episode (see the module docstring)."""
        return self._warning if self.enabled else ""
