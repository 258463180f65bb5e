"""Controls that say whether an accuracy means what it seems to.

- :func:`drift_probe`: logistic regression on each trial's per-channel mean and linear slope (what
  survives of sub-1 Hz activity in a half-second window). On a clean design it sits at chance; in a block
  design (ImageNet-EEG: every image of a class in one run) slow drift is shared by the trials of a
  block, and this probe decodes the class from it: a block confound (Li et al., TPAMI 2020).
- :func:`shuffled_within` permutes labels inside each part of a split (the shuffled-label control):
  never across parts, so no test label leaks into training and model selection sees no true label.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bci_stream.contract.trials import Trials


def drift_features(eeg: np.ndarray) -> np.ndarray:
    """Per-channel mean and least-squares slope of each trial: ``(n, ch, t)`` → ``(n, 2 * ch)``."""
    t = np.linspace(-1.0, 1.0, eeg.shape[-1], dtype=np.float32)
    means = eeg.mean(-1, dtype=np.float64)
    slopes = (eeg @ t) / float(t @ t)
    return np.concatenate([means, slopes], axis=1)


def drift_probe(trials: Trials, split: dict[str, np.ndarray], crop: tuple[int, int] | None = None,
                seed: int = 0) -> np.ndarray:
    """Test-split class probabilities ``(n_test, n_classes)`` of the drift probe trained on ``split["train"]``
    (``crop``: the samples the students see)."""
    eeg = trials.eeg if crop is None else trials.eeg[..., crop[0] : crop[1]]
    x_train = np.concatenate([drift_features(eeg[split["train"][i : i + 512]])
                              for i in range(0, len(split["train"]), 512)])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=0.1, random_state=seed))
    model.fit(x_train, trials.labels[split["train"]])
    probs = model.predict_proba(drift_features(eeg[split["test"]]))
    out = np.zeros((len(split["test"]), trials.n_classes))
    out[:, model.classes_] = probs
    return out


def shuffled_within(labels: np.ndarray, split: dict[str, np.ndarray], seed: int = 0,
                    parts: tuple[str, ...] = ("train", "val")) -> np.ndarray:
    """``labels`` with each of ``parts`` permuted within itself (the test labels stay true)."""
    out = labels.copy()
    rng = np.random.default_rng([seed, 17])
    for part in parts:
        idx = split[part]
        out[idx] = labels[idx][rng.permutation(len(idx))]
    return out
