"""The learnable reference: shrinkage LDA on the low-passed ERP (the ``erp`` features every erp student
reads, flattened). It is the oracle's recipe with everything estimated from training data: class-mean
templates and one shared noise covariance (Ledoit-Wolf shrinkage, ``solver="lsqr", shrinkage="auto"``).

A scikit-learn pipeline (:func:`shrinkage_lda`): :class:`ErpFeatures` → ``StandardScaler`` → LDA, so it
composes with ``clone``, ``cross_val_score`` and MOABB's evaluations like the pyRiemann references
(:mod:`offline_training.experiments.references`).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from bci_stream.contract.features import ErpConfig, Features


class ErpFeatures(TransformerMixin, BaseEstimator):
    """``(n, ch, t)`` cropped trials → ``(n, ch * t_out)`` flattened erp features (the live decoder's causal
    FIR low-pass and decimation, :class:`bci_stream.contract.features.Features`), computed in batches of 256.

    Parameters
    ----------
    erp : the erp feature parameters (the students' own; default :class:`ErpConfig`).
    """

    def __init__(self, erp: ErpConfig | None = None):
        self.erp = erp

    def fit(self, x, y=None) -> ErpFeatures:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        features = Features("erp", erp=self.erp or ErpConfig())
        x = np.asarray(x, np.float32)
        out = np.empty((len(x), *features.shape(x.shape[1], x.shape[2])), np.float32)
        for i in range(0, len(x), 256):
            features.batch(x[i : i + 256], out=out[i : i + 256])
        return out.reshape(len(x), -1)


def shrinkage_lda(erp: ErpConfig | None = None) -> Pipeline:
    """Flattened erp features, standardised on the training trials, then shrinkage LDA."""
    return make_pipeline(ErpFeatures(erp), StandardScaler(), LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))
