"""The learnable reference: shrinkage LDA on the low-passed ERP (the ``erp`` features every erp student
reads, flattened). It is the oracle's recipe with everything estimated from training data: class-mean
templates and one shared noise covariance (Ledoit-Wolf shrinkage, ``solver="lsqr", shrinkage="auto"``)."""

from __future__ import annotations

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from bci_stream.contract.features import ErpConfig, Features


class ShrinkageLDA:
    """Standardise the flattened erp features on the training trials, then shrinkage LDA.

    Parameters
    ----------
    erp : the erp feature parameters (the students' own).
    """

    def __init__(self, erp: ErpConfig | None = None):
        self.features = Features("erp", erp=erp or ErpConfig())
        self.lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def _x(self, eeg: np.ndarray) -> np.ndarray:
        out = np.empty((len(eeg), *self.features.shape(eeg.shape[1], eeg.shape[2])), np.float32)
        for i in range(0, len(eeg), 256):
            self.features.batch(eeg[i : i + 256], out=out[i : i + 256])
        return out.reshape(len(eeg), -1)

    def fit(self, eeg: np.ndarray, labels: np.ndarray) -> ShrinkageLDA:
        """Fit on ``(n, ch, t)`` cropped trials and their labels."""
        x = self._x(eeg)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        self.lda.fit((x - self.mean) / self.std, labels)
        return self

    def predict_proba(self, eeg: np.ndarray, n_classes: int) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` (classes absent from training get 0)."""
        probs = self.lda.predict_proba((self._x(eeg) - self.mean) / self.std)
        out = np.zeros((len(eeg), n_classes))
        out[:, self.lda.classes_] = probs
        return out
