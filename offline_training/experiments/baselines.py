"""Non-neural baseline from the seed's Table 1: logistic regression on average signal power, as a
scikit-learn pipeline (:func:`power_logreg`: :class:`LogPower` → ``StandardScaler`` → ``LogisticRegression``)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def average_power(eeg: np.ndarray) -> np.ndarray:
    """Mean squared signal per channel: ``(n, ch, t)`` → ``(n, ch)``."""
    return (eeg.astype(np.float64) ** 2).mean(-1)


class LogPower(TransformerMixin, BaseEstimator):
    """``(n, ch, t)`` → ``(n, ch)``: the log of each channel's average power."""

    def fit(self, x, y=None) -> LogPower:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.log(average_power(np.asarray(x)) + 1e-12)


def power_logreg(seed: int = 0) -> Pipeline:
    """Standardise log average power, then multinomial logistic regression."""
    return make_pipeline(LogPower(), StandardScaler(), LogisticRegression(max_iter=2000, C=0.5, random_state=seed))
