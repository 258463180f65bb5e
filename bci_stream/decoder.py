"""Decoder: a window of EEG in, class probabilities out, configured entirely by the model card."""

from __future__ import annotations

import hashlib
from collections import deque
from pathlib import Path

import numpy as np

from bci_stream.card_checks import check_card_fits_network
from bci_stream.model_card import ModelCard, ModelCardError
from bci_stream.onnx_session import open_session
from bci_stream.ood import OodMonitor


class Decoder:
    """Runs the exported student on single windows.

    Parameters
    ----------
    model_path : ONNX file with a :class:`ModelCard` in its metadata (refused without one).
    providers : "auto", "cpu" or "cuda" (see :func:`bci_stream.onnx_session.choose_providers`).
    smoothing : decisions averaged in :meth:`smooth` (1 = none).
    threads : ONNX Runtime intra-op threads.
    """

    def __init__(self, model_path: str | Path, providers: str = "auto", smoothing: int = 1, threads: int = 1):
        self.session = open_session(model_path, providers, threads)
        self.card = ModelCard.from_metadata(self.session.get_modelmeta().custom_metadata_map, source=str(model_path))
        self.model_path = Path(model_path)
        self.model_sha256 = hashlib.sha256(self.model_path.read_bytes()).hexdigest()
        self.ood = OodMonitor(enabled=self.card.norm_mean is not None)
        self.provider = self.session.get_providers()[0]
        self.input_name = self.session.get_inputs()[0].name
        self._mean, self._std = self.card.norm_arrays()
        self._inv_std = (1.0 / self._std).astype(np.float32)
        self._scale = np.float32(self.card.signal_scale)
        self._features = self.card.features()  # the trainer's transform (bci_stream.features.Features)
        self._x = np.empty((1, *self.card.feature_shape()), np.float32)
        self._recent: deque[np.ndarray] = deque(maxlen=max(1, smoothing))
        problems = check_card_fits_network(self.card, self.session)
        if problems:
            raise ModelCardError(f"{model_path}: " + "; ".join(problems) + "; re-export it with `bci-train export`")
        self.warm_up()
        self.ood.reset()

    def warm_up(self, runs: int = 3) -> None:
        """Run the whole path on zeros so the first real decision pays no one-off set-up costs."""
        window = np.random.default_rng(0).standard_normal((self.card.n_channels, self.card.window_samples))
        for _ in range(runs):
            self.classify(window.astype(np.float32))

    def features(self, window: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Normalised features of ``window`` ``(n_channels, window_samples)`` in stream units →
        ``(n_channels, n_rows, n_columns)`` float32 (what the network sees; :meth:`ModelCard.feature_shape`),
        written into ``out`` if given (the live path passes the preallocated input buffer)."""
        with np.errstate(over="ignore", invalid="ignore"):  # overflow makes a non-finite decision, withheld
            spec = self._features.window(window, out=out)
        if self._scale != 1:  # every kind is linear in the samples up to |.| / log: scale the features
            if self._features.linear:
                spec *= self._scale
            elif self._features.spectrogram.mode == "log":
                spec += np.float32(np.log(abs(self._scale)))
            else:
                spec *= np.float32(abs(self._scale))
        spec -= self._mean
        spec *= self._inv_std
        return spec

    def classify(self, window: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n_classes,)`` for one window ``(n_channels, window_samples)``."""
        if window.shape != (self.card.n_channels, self.card.window_samples):
            raise ValueError(f"window has shape {window.shape}; the model needs "
                             f"{(self.card.n_channels, self.card.window_samples)}")
        self.features(window, out=self._x[0])
        self.ood.update(self._x)
        return self.session.run(None, {self.input_name: self._x})[0][0]

    def smooth(self, probabilities: np.ndarray) -> np.ndarray:
        """Mean of the last ``smoothing`` decisions (including this one)."""
        self._recent.append(probabilities)
        if len(self._recent) == 1:
            return probabilities
        return np.mean(self._recent, axis=0)

    def reset(self, smoothing: int | None = None) -> None:
        """Forget smoothing history (after a gap in the stream); optionally change how many
        decisions :meth:`smooth` averages."""
        self._recent = deque(maxlen=max(1, smoothing or self._recent.maxlen))

    @property
    def last_features(self) -> np.ndarray:
        """The normalised features of the last classified window, ``(n_channels, n_rows, n_columns)``
        (a view of the decoder's input buffer: copy it to keep it)."""
        return self._x[0]
