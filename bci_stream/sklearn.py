"""An exported model (ONNX + model card) as a scikit-learn estimator.

:class:`ExportedModel` runs the card's whole chain on epoched trials ``(n_trials, n_channels, n_times)``:
unit conversion, the causal preprocessing (each trial from its own first sample, as
:func:`bci_stream.contract.preprocessing.preprocess_epochs` does for the trainer), the window the card names,
the card's features and normalisation (the :class:`~bci_stream.live.decoder.Decoder`'s own code), then the
network. So a model trained here can be scored with :func:`~sklearn.model_selection.cross_val_score`,
put behind a :class:`~sklearn.pipeline.Pipeline` step (:meth:`ExportedModel.transform` gives the
features the network reads) or run in a MOABB evaluation.

It is already trained: :meth:`ExportedModel.fit` only checks the trials and sets ``classes_``. Needs
scikit-learn (``pip install 'bci-stream[sklearn]'``); the live path never imports this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from bci_stream.contract.preprocessing import preprocess_epochs
from bci_stream.contract.units import conversion_factor
from bci_stream.live.decoder import Decoder
from bci_stream.resources import model_path

LABELS = ("index", "id", "name")


class ExportedModel(ClassifierMixin, TransformerMixin, BaseEstimator):
    """A bci-stream ONNX model (with its card) as a classifier and feature transformer.

    Parameters
    ----------
    model : ONNX file with a model card, or "demo" (the shipped demo model).
    tmin : seconds from stimulus onset to the first sample of each trial (negative: a baseline
        before it). The card's window ``[window_offset, window_offset + window_length)`` must lie
        inside the trials, after the card's preprocessing.
    unit : unit of the samples ("V", "mV", "uV", "nV"; None: already the card's ``signal_unit``).
        MOABB delivers µV ("uV").
    labels : what :meth:`predict` returns and ``y`` holds: "index" (class index, card order: what
        a MOABB evaluation's label encoding gives when the card's class ids sort in card order),
        "id" (the card's class ids) or "name" (class names).
    providers, threads : ONNX Runtime settings (:class:`~bci_stream.live.decoder.Decoder`).

    Attributes
    ----------
    classes_ : ``(n_classes,)`` labels in output order (see ``labels``).
    decoder_ : the :class:`~bci_stream.live.decoder.Decoder` (its ``card`` is the model card).
    """

    def __init__(self, model: str = "demo", tmin: float = 0.0, unit: str | None = None, labels: str = "index",
                 providers: str = "cpu", threads: int = 1):
        self.model = model
        self.tmin = tmin
        self.unit = unit
        self.labels = labels
        self.providers = providers
        self.threads = threads

    def fit(self, X: np.ndarray | None = None, y: np.ndarray | None = None) -> ExportedModel:
        """Open the model and check that trials of ``X``'s shape fit it (nothing is learnt). Returns ``self``."""
        if self.labels not in LABELS:
            raise ValueError(f"labels must be one of {LABELS}; got {self.labels!r}")
        self.decoder_ = Decoder(Path(model_path(str(self.model))), providers=self.providers, threads=self.threads)
        card = self.decoder_.card
        if card.is_embedding:
            raise ValueError(f"{self.model} is an embedding model; ExportedModel scores classifiers "
                             "(use bci_stream.retrieval.retriever for retrieval)")
        self.classes_ = {"index": np.arange(card.n_classes), "id": np.asarray(card.class_ids),
                         "name": np.asarray(card.class_names)}[self.labels]
        if X is not None:
            self._windows(np.asarray(X)[:1])  # the shape, rate and window checks, on one trial
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The normalised features the network reads, flattened: ``(n_trials, n_channels * n_rows * n_columns)``
        (:meth:`bci_stream.contract.model_card.ModelCard.feature_shape`)."""
        return self.features(X).reshape(len(X), -1)

    def features(self, X: np.ndarray) -> np.ndarray:
        """The normalised features ``(n_trials, n_channels, n_rows, n_columns)`` float32."""
        check_is_fitted(self, "decoder_")
        windows = self._windows(np.asarray(X))
        dec = self.decoder_
        out = np.empty((len(windows), *dec.card.feature_shape()), np.float32)
        for i in range(0, len(windows), 256):  # bounded memory, as the trainer computes them
            with np.errstate(over="ignore", invalid="ignore"):
                spec = dec._features.batch(windows[i : i + 256], out=out[i : i + 256])
            dec._finish(spec)
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n_trials, n_classes)`` from the ONNX network (columns: ``classes_``)."""
        x = self.features(X)
        session, name = self.decoder_.session, self.decoder_.input_name
        parts = [session.run(None, {name: x[i : i + 256]})[0] for i in range(0, len(x), 256)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes_)), np.float32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class per trial ``(n_trials,)`` (values of ``classes_``)."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def _windows(self, X: np.ndarray) -> np.ndarray:
        """Trials in stream units at the input rate → the card's windows ``(n_trials, n_channels, window_samples)``."""
        card = self.decoder_.card
        if X.ndim != 3 or X.shape[1] != card.n_channels:
            raise ValueError(f"X must be trials (n_trials, {card.n_channels} channels: {', '.join(card.ch_names)}, "
                             f"n_times) at {card.input_sfreq:g} Hz; got shape {X.shape}")
        scale = 1.0 if self.unit is None else conversion_factor(self.unit, card.signal_unit)
        x = np.asarray(X, np.float32) * np.float32(scale) if scale != 1.0 else np.asarray(X, np.float32)
        x = preprocess_epochs(card.preprocessing_spec(), x, card.ch_names, card.input_sfreq)
        start = int(round((card.window_offset - self.tmin) * card.sfreq))
        stop = start + card.window_samples
        if start < 0 or stop > x.shape[-1]:
            have = f"{self.tmin:g}..{self.tmin + x.shape[-1] / card.sfreq:g} s"
            raise ValueError(f"the model reads {card.window_offset:g}..{card.window_offset + card.window_length:g} s "
                             f"from stimulus onset; the trials cover {have} (after preprocessing); "
                             "epoch them wider or set tmin")
        return np.ascontiguousarray(x[..., start:stop])
