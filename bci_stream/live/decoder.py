"""Decoder: a window of EEG in, class probabilities (or an embedding) out, configured entirely by the model card."""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from bci_stream.contract.adaptation import AdaptConfig, FeatureRecentring
from bci_stream.contract.card_checks import check_card_fits_network
from bci_stream.contract.features import RollingSpectrogram
from bci_stream.contract.model_card import ModelCard, ModelCardError
from bci_stream.live.onnx_session import open_session
from bci_stream.live.ood import OodMonitor

if TYPE_CHECKING:
    import pylsl

log = logging.getLogger(__name__)


class Decoder:
    """Runs the exported student on single windows.

    Parameters
    ----------
    model_path : ONNX file with a :class:`ModelCard` in its metadata (refused without one).
    providers : "auto", "cpu" or "cuda" (see :func:`bci_stream.live.onnx_session.choose_providers`).
    smoothing : decisions averaged in :meth:`smooth` (1 = none).
    threads : ONNX Runtime intra-op threads.
    incremental : compute only the new spectrogram frames of a window that moved by whole STFT hops
        (:class:`~bci_stream.contract.features.RollingSpectrogram`, bit-identical to the full computation);
        False: every window in full.

    Label-free session adaptation is off until :meth:`set_adaptation` (the live session calls it
    with its ``LiveConfig.adapt``): ``recentring`` is then the session's
    :class:`~bci_stream.contract.adaptation.FeatureRecentring` (None: off).
    """

    def __init__(self, model_path: str | Path, providers: str = "auto", smoothing: int = 1, threads: int = 1,
                 incremental: bool = True):
        self.session = open_session(model_path, providers, threads)
        self.card = ModelCard.from_metadata(self.session.get_modelmeta().custom_metadata_map, source=str(model_path))
        self.model_path = Path(model_path)
        self.model_sha256 = hashlib.sha256(self.model_path.read_bytes()).hexdigest()
        self.ood = OodMonitor(enabled=self.card.norm_mean is not None)
        self.provider = self.session.get_providers()[0]
        self.input_name = self.session.get_inputs()[0].name
        self._mean, self._std = self.card.norm_arrays()
        self._inv_std = (1.0 / self._std).astype(np.float32)
        self._card_norm = (self._mean, self._inv_std)  # the training statistics, kept for set_adaptation()
        self.recentring: FeatureRecentring | None = None  # set_adaptation(): the session's statistics
        self._calibrating: FeatureRecentring | None = None  # the same while it gathers inputs, then None
        self._scale = np.float32(self.card.signal_scale)
        self._features = self.card.features()  # the trainer's transform (bci_stream.contract.features.Features)
        self._recent: deque[np.ndarray] = deque(maxlen=max(1, smoothing))
        problems = check_card_fits_network(self.card, self.session)
        if problems:
            raise ModelCardError(f"{model_path}: " + "; ".join(problems) + "; re-export it with `bci-train export`")
        # Two network inputs, used in turn: a rolled window's kept columns are copied from the last
        # input into the next. Each is bound once to ONNX Runtime (IO binding: no per-decision
        # OrtValues, inputs read in place, outputs written into self._probs; tools/bench_onnx.py).
        shape = (1, *self.card.feature_shape())
        self._inputs = [np.zeros(shape, np.float32), np.zeros(shape, np.float32)]
        self._turn = 0
        self._x = self._inputs[0]
        self._probs = np.zeros((1, self.card.n_outputs), np.float32)  # probabilities, or an embedding
        self._scratch = np.zeros_like(self._probs)  # touch(): results nobody reads
        self._bindings = [self._bind(x, self._probs) for x in self._inputs]
        self._touch_bindings = [self._bind(x, self._scratch) for x in self._inputs]
        s = self._features.spectrogram
        self.rolling: RollingSpectrogram | None = None
        if incremental and self._features.kind == "spectrogram" and RollingSpectrogram.supports(s, self.card.window_samples):
            self.rolling = RollingSpectrogram(s, self.card.n_channels, self.card.window_samples)
        self.warm_up()
        self.ood.reset()

    def _bind(self, x: np.ndarray, probs: np.ndarray) -> ort.IOBinding | None:
        """An IO binding of input ``x`` and the first output ``probs`` (None where the provider refuses
        one: :meth:`classify` then calls ``session.run``)."""
        try:
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(self.input_name, ort.OrtValue.ortvalue_from_numpy(x))
            binding.bind_ortvalue_output(self.session.get_outputs()[0].name, ort.OrtValue.ortvalue_from_numpy(probs))
            return binding
        except Exception as err:  # pragma: no cover - providers without CPU-memory binding
            log.info("no IO binding (%s): session.run per decision", err)
            return None

    def warm_up(self, runs: int = 3) -> None:
        """Run the whole path on zeros so the first real decision pays no one-off set-up costs."""
        window = np.random.default_rng(0).standard_normal((self.card.n_channels, self.card.window_samples))
        for _ in range(runs):
            self.classify(window.astype(np.float32))

    def features(self, window: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Normalised features of ``window`` ``(n_channels, window_samples)`` in stream units →
        ``(n_channels, n_rows, n_columns)`` float32 (what the network sees; :meth:`ModelCard.feature_shape`),
        written into ``out`` if given. Always the full computation."""
        with np.errstate(over="ignore", invalid="ignore"):  # overflow makes a non-finite decision, withheld
            spec = self._features.window(window, out=out)
        return self._finish(spec)

    def _finish(self, spec: np.ndarray) -> np.ndarray:
        """Signal scale and normalisation, in place, on ``(n_channels, n_rows, n_columns)`` columns
        (all of a window's, or only its new ones: every column is treated alike)."""
        with np.errstate(over="ignore", invalid="ignore"):
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

    def classify(self, window: np.ndarray, end: int | None = None) -> np.ndarray:
        """The network's output for one window ``(n_channels, window_samples)``: class probabilities
        ``(n_classes,)``, or for an embedding model (``card.is_embedding``) its unit-length embedding
        ``(dim,)`` (:mod:`bci_stream.retrieval.retriever` turns it into a decision).

        ``end``: the absolute index (one past the last sample) of the window in its stream, as
        :meth:`RingBuffer.window` takes it. When the last window was classified with an ``end`` of
        the same stream and this one moved by whole STFT hops, only the new spectrogram frames are
        computed; call :meth:`reset` when the stream breaks (indices then no longer name the same
        samples). None: computed in full.
        """
        if window.shape != (self.card.n_channels, self.card.window_samples):
            raise ValueError(f"window has shape {window.shape}; the model needs "
                             f"{(self.card.n_channels, self.card.window_samples)}")
        previous, turn = self._inputs[self._turn], 1 - self._turn
        x = self._inputs[turn]
        rolling = self.rolling
        if rolling is not None and rolling.shift_for(end):
            with np.errstate(over="ignore", invalid="ignore"):
                rolling.roll(window, end, previous[0], x[0], finish=self._finish)
        elif rolling is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                rolling.full(window, end, x[0], finish=self._finish)
        else:
            self.features(window, out=x[0])
        self._turn, self._x = turn, x
        if self._calibrating is not None:  # the only cost of adaptation when off or done
            self._calibrate(x[0])
        self.ood.update(x)
        binding = self._bindings[turn]
        if binding is None:
            return self.session.run(None, {self.input_name: x})[0][0]
        self.session.run_with_iobinding(binding)
        return self._probs[0].copy()  # the caller keeps it (smoothing, the outlet, the renderer)

    def set_adaptation(self, config: AdaptConfig) -> None:
        """Start label-free session adaptation afresh (:mod:`bci_stream.contract.adaptation`): the
        next ``config.windows`` inputs are normalised with the card's statistics and gathered; the
        inputs after them with the session's. ``mode="off"``: the card's statistics only, for good.
        A new model, or a new session: :meth:`reset` after a gap keeps the adaptation."""
        self._mean, self._inv_std = self._card_norm
        n_channels, n_rows, _ = self.card.feature_shape()
        self.recentring = FeatureRecentring(config, n_channels, n_rows) if config.enabled else None
        self._calibrating = self.recentring
        if self.rolling is not None:  # its kept columns were normalised with the statistics replaced
            self.rolling.reset()

    def _calibrate(self, z: np.ndarray) -> None:
        """One input ``z`` ``(n_channels, n_rows, n_columns)``, normalised with the training statistics,
        into the re-centring; once it has enough, the session's statistics normalise every later input."""
        rec = self._calibrating
        if not rec.update(z):
            return
        self._calibrating = None
        mean, std = rec.statistics(self._card_norm[0], self._std)
        self._mean, self._inv_std = mean, (1.0 / std).astype(np.float32)
        if self.rolling is not None:  # its kept columns are z-scores of the training statistics
            self.rolling.reset()

    def touch(self) -> None:
        """Run the network once on the last input, results discarded: brings its code and weights
        into the cache before a decision is due (the live loop's ``prewarm``)."""
        binding = self._touch_bindings[self._turn]
        if binding is None:
            self.session.run(None, {self.input_name: self._x})
        else:
            self.session.run_with_iobinding(binding)

    def smooth(self, probabilities: np.ndarray) -> np.ndarray:
        """Mean of the last ``smoothing`` decisions (including this one)."""
        self._recent.append(probabilities)
        if len(self._recent) == 1:
            return probabilities
        return np.mean(self._recent, axis=0)

    def reset(self, smoothing: int | None = None) -> None:
        """Forget smoothing history and the last window (after a gap in the stream); optionally
        change how many decisions :meth:`smooth` averages."""
        self._recent = deque(maxlen=max(1, smoothing or self._recent.maxlen))
        if self.rolling is not None:
            self.rolling.reset()

    def check_stream(self, info: pylsl.StreamInfo) -> list[str]:
        """Compare an input stream's ``desc/reference`` and ``desc/filtering`` (XDF meta-data conventions,
        :mod:`bci_stream.lsl.stream_meta`) with the card; each contradiction is logged as a warning and returned
        (empty: none, or the stream describes neither)."""
        from bci_stream.lsl.stream_meta import contradictions, read_stream_filtering

        found = contradictions(self.card, read_stream_filtering(info))
        for line in found:
            log.warning("stream %r: %s", info.name(), line)
        return found

    def model_desc(self) -> dict:
        """The model as a predictions outlet describes it (:func:`bci_stream.lsl.outlets.model_desc`)."""
        from bci_stream.lsl.outlets import model_desc

        return model_desc(self.card, self.model_path, self.model_sha256)

    @property
    def last_features(self) -> np.ndarray:
        """The normalised features of the last classified window, ``(n_channels, n_rows, n_columns)``
        (a view of the decoder's input buffer: copy it to keep it)."""
        return self._x[0]
