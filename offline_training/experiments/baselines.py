"""Non-neural baseline from the seed's Table 1: logistic regression on average signal power."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def average_power(eeg: np.ndarray) -> np.ndarray:
    """Mean squared signal per channel: ``(n, ch, t)`` → ``(n, ch)``."""
    return (eeg.astype(np.float64) ** 2).mean(-1)


def fit_power_logreg(eeg: np.ndarray, labels: np.ndarray, seed: int = 0):
    """Standardise log average power, then multinomial logistic regression."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5, random_state=seed))
    model.fit(np.log(average_power(eeg) + 1e-12), labels)
    return model


def predict_power_logreg(model, eeg: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` (classes absent from training get 0)."""
    probs = model.predict_proba(np.log(average_power(eeg) + 1e-12))
    out = np.zeros((len(eeg), n_classes))
    out[:, model.classes_] = probs
    return out
