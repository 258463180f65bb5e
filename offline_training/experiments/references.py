"""The field's reference methods as scikit-learn estimators on cropped trials ``(n, ch, t)``, built
from the libraries that define them (pyRiemann, scikit-learn; MOABB's SSVEP filter-bank recipe), so the
project runs them on the same folds as its students.

Oscillatory responses (SSVEP): ``cca+lda`` (canonical correlations with sine/cosine references at the
stimulus frequencies, 2 harmonics, scikit-learn's CCA, then shrinkage LDA, which also learns the rest
class), ``fbcov+mdm`` and ``fbcov+ts+lr`` (covariances of the signal band-passed ±1 Hz around each
stimulus frequency, stacked as blocks, MOABB's SSVEP pipelines; MDM or tangent space + logistic
regression), ``cov+ts+lr`` (broadband covariances), ``trca`` (MOABB's ``SSVEP_TRCA``, ensemble TRCA with
its own filter bank, Nakanishi et al. 2018) and ``cca`` (MOABB's ``SSVEP_CCA``, Bin et al. 2009): these two
know only the flicker classes, as published (no idle-state model), so a rest trial always counts as an
error. ERPs: ``xdawn+mdm`` and ``xdawn+ts+lr`` (pyRiemann's
xDAWN covariances) and ``lda`` (shrinkage LDA on the low-passed, decimated epoch:
:func:`offline_training.experiments.lda.shrinkage_lda`).
"""

from __future__ import annotations

import re

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from bci_stream.contract.features import ErpConfig

SSVEP = ("cca+lda", "trca", "cca", "fbcov+mdm", "fbcov+ts+lr", "cov+ts+lr")
ERP = ("xdawn+ts+lr", "xdawn+mdm", "lda")


def stimulus_frequencies(class_names: list[str]) -> list[float | None]:
    """The flicker frequency named by each class (``"13Hz"``, ``"13 Hz"``, ``"13"`` → 13.0; ``"rest"`` → None)."""
    out = []
    for name in class_names:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:hz)?\s*", name, re.IGNORECASE)
        out.append(float(m.group(1)) if m else None)
    return out


class CCACorrelations(BaseEstimator, TransformerMixin):
    """``(n, ch, t)`` → ``(n, n_freqs)``: the first canonical correlation (scikit-learn's CCA) between each
    trial and sine/cosine references at each of ``freqs`` with ``n_harmonics`` harmonics."""

    def __init__(self, freqs: tuple[float, ...] = (), sfreq: float = 256.0, n_harmonics: int = 2):
        self.freqs, self.sfreq, self.n_harmonics = freqs, sfreq, n_harmonics

    def fit(self, x, y=None):
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        from sklearn.cross_decomposition import CCA

        t = np.arange(x.shape[-1]) / self.sfreq
        refs = [np.stack([g(2 * np.pi * h * f * t) for h in range(1, self.n_harmonics + 1) for g in (np.sin, np.cos)], 1)
                for f in self.freqs]
        out = np.zeros((len(x), len(self.freqs)))
        for i, trial in enumerate(np.asarray(x, np.float64)):
            for j, ref in enumerate(refs):
                u, v = CCA(n_components=1).fit(trial.T, ref).transform(trial.T, ref)
                out[i, j] = np.corrcoef(u[:, 0], v[:, 0])[0, 1]
        return out


class FilterBank(BaseEstimator, TransformerMixin):
    """``(n, ch, t)`` → ``(n, n_bands * ch, t)``: zero-phase Butterworth band-passes inside each trial
    (``bands``: (low, high) Hz), stacked along channels (MOABB's SSVEP filter bank, for block covariances)."""

    def __init__(self, bands: tuple[tuple[float, float], ...] = (), sfreq: float = 256.0, order: int = 4):
        self.bands, self.sfreq, self.order = bands, sfreq, order

    def fit(self, x, y=None):
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        from scipy.signal import butter, sosfiltfilt

        x = np.asarray(x, np.float64)
        return np.concatenate([sosfiltfilt(butter(self.order, b, btype="band", fs=self.sfreq, output="sos"), x, axis=-1)
                               for b in self.bands], axis=1)


class MoabbSSVEP(BaseEstimator, ClassifierMixin):
    """A MOABB SSVEP classifier (``"trca"``: ``SSVEP_TRCA``, ``"cca"``: ``SSVEP_CCA``) on trials ``(n, ch, t)``.

    MOABB's SSVEP classifiers take :class:`mne.Epochs` and labels that are the flicker frequencies; this
    builds both from the arrays. Only trials of classes that name a frequency train it; the other classes
    (rest) get probability 0 (the methods have no idle state)."""

    def __init__(self, method: str = "trca", sfreq: float = 256.0, freqs: tuple[float | None, ...] = ()):
        self.method, self.sfreq, self.freqs = method, sfreq, freqs

    def _epochs(self, x: np.ndarray):
        import mne

        info = mne.create_info(x.shape[1], self.sfreq, "eeg", verbose=False)
        return mne.EpochsArray(np.asarray(x, np.float64), info, tmin=0.0, verbose=False)

    def fit(self, x, y):
        from moabb.pipelines.classification import SSVEP_CCA, SSVEP_TRCA

        y = np.asarray(y)
        self.classes_ = np.unique(y)
        flicker = np.array([self.freqs[c] is not None for c in y])
        labels = np.array([f"{self.freqs[c]:g}" for c in y[flicker]])
        if self.method == "trca":  # one sub-band per flicker class at most (MOABB's filter bank needs it)
            model = SSVEP_TRCA(n_fbands=min(3, len(np.unique(labels))), is_ensemble=True)
        else:  # 2 harmonics: the data are band-passed below the third harmonic of 17 and 21 Hz
            model = SSVEP_CCA(n_harmonics=2, freq_map={lab: float(lab) for lab in np.unique(labels)})
        self.model_ = model.fit(self._epochs(np.asarray(x)[flicker]), labels)
        # MOABB's classes are the label strings in its own order: map each to ours
        self.columns_ = [int(np.flatnonzero(self.classes_ == next(c for c in y[flicker] if f"{self.freqs[c]:g}" == lab))[0])
                         for lab in self.model_.freqs_]
        return self

    def predict_proba(self, x):
        import warnings

        x = np.asarray(x)
        with warnings.catch_warnings():  # MOABB's TRCA warns when the filter bank's order selection is relaxed
            warnings.simplefilter("ignore")
            if self.method == "cca":
                p = np.clip(np.nan_to_num(np.asarray(self.model_.predict_proba(self._epochs(x)))), 0, None)
            else:  # SSVEP_TRCA.predict_proba divides the correlations by their sum, which flips the order when
                # that sum is negative: its predict (the arg-max of the correlations) is right, so one-hot
                p = np.asarray(self.model_.freqs_)[:, None] == np.asarray(self.model_.predict(x))[None, :]
                p = p.T.astype(float)
        out = np.zeros((len(x), len(self.classes_)))
        out[:, self.columns_] = p
        out /= np.maximum(out.sum(1, keepdims=True), 1e-12)
        out[out.sum(1) == 0, self.columns_[0]] = 1.0
        return out

    def predict(self, x):
        return self.classes_[self.predict_proba(x).argmax(1)]


def build_reference(name: str, sfreq: float, class_names: list[str]) -> Pipeline:
    """The scikit-learn pipeline of reference ``name`` (one of :data:`SSVEP` or :data:`ERP`) for trials at
    ``sfreq`` Hz whose classes are ``class_names`` (SSVEP references read the flicker frequencies from them)."""
    from pyriemann.classification import MDM
    from pyriemann.estimation import Covariances, XdawnCovariances
    from pyriemann.tangentspace import TangentSpace

    freqs = tuple(f for f in stimulus_frequencies(class_names) if f is not None)
    if name in ("cca+lda", "trca", "cca", "fbcov+mdm", "fbcov+ts+lr") and not freqs:
        raise ValueError(f"reference {name!r} needs flicker frequencies in the class names (e.g. '13Hz'); got {class_names}")
    lr = LogisticRegression(max_iter=1000)
    bands = tuple((f - 1.0, f + 1.0) for f in freqs)
    if name == "cca+lda":
        return make_pipeline(CCACorrelations(freqs, sfreq), LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))
    if name in ("fbcov+mdm", "fbcov+ts+lr"):
        n_ch = None  # BlockCovariances needs the block size: set at fit time by _Blocks
        return make_pipeline(FilterBank(bands, sfreq), _Blocks(len(bands), n_ch),
                             MDM() if name == "fbcov+mdm" else make_pipeline(TangentSpace(), lr))
    if name in ("trca", "cca"):
        return make_pipeline(MoabbSSVEP(name, sfreq, tuple(stimulus_frequencies(class_names))))
    if name == "cov+ts+lr":
        return make_pipeline(Covariances("lwf"), TangentSpace(), lr)
    if name == "xdawn+ts+lr":
        return make_pipeline(XdawnCovariances(nfilter=2, estimator="lwf"), TangentSpace(), lr)
    if name == "xdawn+mdm":
        return make_pipeline(XdawnCovariances(nfilter=2, estimator="lwf"), MDM())
    if name == "lda":
        from offline_training.experiments.lda import shrinkage_lda
        from offline_training.experiments.pipeline import erp_for_rate

        return shrinkage_lda(erp_for_rate(ErpConfig(), sfreq))
    raise ValueError(f"unknown reference {name!r}; choose from {', '.join(SSVEP + ERP)}")


class _Blocks(BaseEstimator, TransformerMixin):
    """pyRiemann's BlockCovariances (Ledoit-Wolf) with one block per band, sized from the input."""

    def __init__(self, n_bands: int = 1, n_chans: int | None = None):
        self.n_bands, self.n_chans = n_bands, n_chans

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        from pyriemann.estimation import BlockCovariances

        size = x.shape[1] // self.n_bands
        return BlockCovariances([size] * self.n_bands, estimator="lwf").fit_transform(x)


def references_for(class_names: list[str]) -> tuple[str, ...]:
    """The references that apply: SSVEP's when the classes name flicker frequencies, else the ERP ones."""
    return SSVEP if any(f is not None for f in stimulus_frequencies(class_names)) else ERP


def reference_probabilities(model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n, n_classes)`` probabilities of a fitted reference (MDM's softmax of distances included);
    classes absent from training get 0."""
    probs = model.predict_proba(x)
    out = np.zeros((len(x), n_classes))
    out[:, np.asarray(model.classes_, int)] = probs
    return out
