"""Preprocessing: the causal signal chain a model was trained behind, carried in its model card.

One implementation, run by the trainer and by the live decoder alike::

    samples (n_times, n_channels) in the card's unit
      -> re-reference (none | average of the model's channels | mean of named model channels)
      -> causal IIR filters (Butterworth high/low/band-pass, notch), one cascade of second-order
         sections, state carried from chunk to chunk
      -> integer decimation (keep every k-th sample; the low-pass before it is one of the filters)
      -> per-channel standardisation (x - mean) / std, if the training data were standardised

The live decoder feeds each pulled chunk through a :class:`CausalPreprocessor` (``sosfilt`` with
carried state, reset after a gap); the trainer runs the same object over a whole continuous
recording before epoching it (:func:`preprocess_continuous`), or over each epoch from its first
sample (:func:`preprocess_epochs`, for data that only exist as epochs: give them a lead-in). The
filter state starts at the steady state of the first sample, so a constant offset never rings.
Chunking never changes the result: ``sosfilt`` runs sample by sample, so a stream filtered in
20-sample chunks equals the recording filtered in one call (parity test in ``tests/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FILTER_KINDS = ("highpass", "lowpass", "bandpass", "bandstop", "notch")


class PreprocessingError(ValueError):
    """A preprocessing description that cannot be designed or applied (bad frequency, channel...)."""


@dataclass(frozen=True)
class FilterDesign:
    """One causal IIR filter.

    Attributes
    ----------
    kind : "highpass", "lowpass", "bandpass", "bandstop" (Butterworth) or "notch" (``iirnotch``).
    freqs : cut-off(s) in Hz: one for high/low-pass and notch, two (low, high) for band filters.
    order : Butterworth order (band filters have twice as many poles).
    q : quality factor of a notch.
    """

    kind: str
    freqs: tuple[float, ...]
    order: int = 4
    q: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "freqs", tuple(float(f) for f in self.freqs))
        if self.kind not in FILTER_KINDS:
            raise PreprocessingError(f"unknown filter kind {self.kind!r}; use one of {', '.join(FILTER_KINDS)}")
        want = 2 if self.kind in ("bandpass", "bandstop") else 1
        if len(self.freqs) != want:
            raise PreprocessingError(f"a {self.kind} filter takes {want} frequency(ies); got {list(self.freqs)}")
        if any(not np.isfinite(f) or f <= 0 for f in self.freqs) or list(self.freqs) != sorted(self.freqs):
            raise PreprocessingError(f"{self.kind} frequencies must be positive and increasing; got {list(self.freqs)}")
        if not 1 <= self.order <= 10:
            raise PreprocessingError(f"filter order must be 1..10; got {self.order}")
        if self.q <= 0:
            raise PreprocessingError(f"notch quality factor must be > 0; got {self.q}")

    def sos(self, sfreq: float) -> np.ndarray:
        """Second-order sections ``(n_sections, 6)`` at sampling rate ``sfreq`` Hz."""
        from scipy.signal import butter, iirnotch, tf2sos  # scipy.signal: half a second to import

        nyquist = sfreq / 2
        if max(self.freqs) >= nyquist:
            raise PreprocessingError(
                f"{self.kind} at {list(self.freqs)} Hz is at or above the Nyquist frequency ({nyquist:g} Hz)"
            )
        if self.kind == "notch":
            b, a = iirnotch(self.freqs[0], self.q, fs=sfreq)
            return tf2sos(b, a)
        cut = self.freqs[0] if len(self.freqs) == 1 else list(self.freqs)
        return butter(self.order, cut, btype=self.kind, fs=sfreq, output="sos")

    def describe(self) -> str:
        hz = "-".join(f"{f:g}" for f in self.freqs)
        return f"notch {hz} Hz (Q {self.q:g})" if self.kind == "notch" else f"{self.kind} {hz} Hz (order {self.order})"


@dataclass(frozen=True)
class Preprocessing:
    """What happens to the samples between the amplifier and the features (see the module docstring).

    Attributes
    ----------
    filters : causal filters, applied in order at the input rate.
    reference : "none", "average" (mean of the model's channels) or comma-separated channel names
        (their mean is subtracted; they must be among the model's channels).
    decimate : keep every ``decimate``-th sample after filtering (1: none); the model's rate is the
        input rate divided by it. Put a low-pass below the new Nyquist frequency in ``filters``.
    standardise_mean, standardise_std : per-channel statistics, in the signal unit, of the training
        data after filtering; ``None`` when the data were not standardised.
    """

    filters: tuple[FilterDesign, ...] = ()
    reference: str = "none"
    decimate: int = 1
    standardise_mean: tuple[float, ...] | None = None
    standardise_std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", tuple(self.filters))
        if self.decimate < 1:
            raise PreprocessingError(f"decimate must be >= 1; got {self.decimate}")
        if (self.standardise_mean is None) != (self.standardise_std is None):
            raise PreprocessingError("standardisation needs both a mean and a std per channel")
        if self.standardise_std is not None:
            std = np.asarray(self.standardise_std, float)
            if not (np.isfinite(std).all() and (std > 0).all() and np.isfinite(self.standardise_mean).all()):
                raise PreprocessingError("standardisation std must be finite and > 0 for every channel")

    @property
    def is_identity(self) -> bool:
        """True when samples pass through unchanged (the seed's models)."""
        return (not self.filters and self.reference == "none" and self.decimate == 1
                and self.standardise_mean is None)

    def reference_channels(self, ch_names: list[str]) -> np.ndarray | None:
        """Indices of the reference channels in ``ch_names`` (None: no re-referencing)."""
        if self.reference == "none":
            return None
        if self.reference == "average":
            return np.arange(len(ch_names))
        wanted = [c.strip() for c in self.reference.split(",") if c.strip()]
        folded = {c.lower(): i for i, c in enumerate(ch_names)}
        missing = [c for c in wanted if c.lower() not in folded]
        if missing or not wanted:
            raise PreprocessingError(
                f"reference channel(s) {missing or self.reference!r} are not among the model's channels"
            )
        return np.array([folded[c.lower()] for c in wanted])

    def sos(self, sfreq: float) -> np.ndarray | None:
        """All filters as one cascade ``(n_sections, 6)`` at input rate ``sfreq`` (None: no filter)."""
        if not self.filters:
            return None
        return np.concatenate([f.sos(sfreq) for f in self.filters])

    def describe(self) -> str:
        """One line, e.g. "average reference; bandpass 1-30 Hz (order 4); decimate 4; standardised"."""
        parts = [] if self.reference == "none" else [f"{self.reference} reference"]
        parts += [f.describe() for f in self.filters]
        if self.decimate > 1:
            parts.append(f"decimate {self.decimate}")
        if self.standardise_mean is not None:
            parts.append("per-channel standardisation")
        return "; ".join(parts) or "none"

    # --- card serialisation --------------------------------------------------------------------
    def to_dict(self, sfreq: float | None = None) -> dict:
        """JSON-able; with ``sfreq`` (the input rate) each filter carries its SOS coefficients too."""
        out: dict = {"filters": [], "reference": self.reference, "decimate": self.decimate,
                     "standardise_mean": None if self.standardise_mean is None else list(self.standardise_mean),
                     "standardise_std": None if self.standardise_std is None else list(self.standardise_std)}
        for f in self.filters:
            entry = {"kind": f.kind, "freqs": list(f.freqs), "order": f.order, "q": f.q}
            if sfreq is not None:
                entry["sos"] = f.sos(sfreq).tolist()
            out["filters"].append(entry)
        return out

    @classmethod
    def from_dict(cls, data: dict | None) -> Preprocessing:
        """Inverse of :meth:`to_dict` (``None`` or ``{}``: no preprocessing). Stored SOS
        coefficients are checked against the design parameters by :meth:`check_coefficients`."""
        if not data:
            return cls()
        known = {"filters", "reference", "decimate", "standardise_mean", "standardise_std"}
        unknown = set(data) - known
        if unknown:
            raise PreprocessingError(f"preprocessing has unknown fields: {sorted(unknown)}")
        filters = []
        for f in data.get("filters", []):
            f = {k: v for k, v in f.items() if k != "sos"}
            filters.append(FilterDesign(kind=f["kind"], freqs=tuple(f["freqs"]), order=int(f.get("order", 4)),
                                        q=float(f.get("q", 30.0))))
        mean, std = data.get("standardise_mean"), data.get("standardise_std")
        return cls(filters=tuple(filters), reference=str(data.get("reference", "none")),
                   decimate=int(data.get("decimate", 1)),
                   standardise_mean=None if mean is None else tuple(float(v) for v in mean),
                   standardise_std=None if std is None else tuple(float(v) for v in std))

    @staticmethod
    def stored_sos(data: dict | None) -> np.ndarray | None:
        """The SOS coefficients stored in a card's preprocessing dict (None when it has none)."""
        sections = [np.asarray(f["sos"], float) for f in (data or {}).get("filters", []) if "sos" in f]
        return np.concatenate(sections) if sections else None


@dataclass
class _State:
    zi: np.ndarray | None = None  # (n_sections, ..., 2, n_channels); NaN columns: start again at the next finite sample
    phase: int = 0  # samples since the last kept one, for decimation
    restarted: tuple[int, ...] = ()  # channels whose filter started again in the last chunk (after non-finite input)


@dataclass
class CausalPreprocessor:
    """Applies a :class:`Preprocessing` to consecutive chunks of one stream, carrying filter state.

    ``process(samples (n_times, n_channels))`` returns ``(n_out, n_channels)`` float32 (``n_out``
    is ``n_times`` unless decimating). :meth:`reset` forgets the state (after a gap in the stream):
    the next chunk starts the filters at the steady state of its first sample. Non-finite samples
    come out as NaN and restart their channel's filter (module docstring); :attr:`restarted` names
    the channels (indices) restarted in the last chunk, so the caller can log it.
    """

    preprocessing: Preprocessing
    ch_names: list[str]
    sfreq: float  # input rate, Hz
    sos: np.ndarray | None = None  # default: designed from ``preprocessing`` at ``sfreq``
    _state: _State = field(default_factory=_State, repr=False)

    def __post_init__(self) -> None:
        pre = self.preprocessing
        if self.sos is None:
            self.sos = pre.sos(self.sfreq)
        self._ref = pre.reference_channels(self.ch_names)
        n = len(self.ch_names)
        if pre.standardise_mean is not None and len(pre.standardise_mean) != n:
            raise PreprocessingError(f"standardisation has {len(pre.standardise_mean)} channels; the model has {n}")
        self._mean = None if pre.standardise_mean is None else np.asarray(pre.standardise_mean, np.float64)
        self._inv_std = None if pre.standardise_std is None else 1.0 / np.asarray(pre.standardise_std, np.float64)
        self.identity = pre.is_identity

    @property
    def out_sfreq(self) -> float:
        return self.sfreq / self.preprocessing.decimate

    def reset(self) -> None:
        self._state = _State()

    @property
    def restarted(self) -> tuple[int, ...]:
        """Channels (indices) whose filter started again in the last chunk after non-finite samples."""
        return self._state.restarted

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Preprocess the next chunk ``(n_times, n_channels)`` of the stream; see the class docstring."""
        if self.identity:
            return samples
        out, self._state = _run(self, np.asarray(samples), self._state)
        return out

    def process_stamped(self, samples: np.ndarray, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`process` plus the timestamps ``(n_times,)`` of the samples it keeps."""
        if self.identity:
            return samples, stamps
        k = self.preprocessing.decimate
        keep = slice((-self._state.phase) % k, None, k)
        return self.process(samples), stamps[keep]


def _run(p: CausalPreprocessor, x: np.ndarray, state: _State) -> tuple[np.ndarray, _State]:
    """The chain on ``x`` of shape ``(..., n_times, n_channels)`` (leading dims: independent epochs)."""
    from scipy.signal import sosfilt, sosfilt_zi  # imported once the first chunk comes (cached after)

    if x.shape[-2] == 0:
        return x.astype(np.float32), state
    x = x.astype(np.float64)  # a fresh copy: the caller's buffer is never touched
    if p._ref is not None:
        x -= x[..., p._ref].mean(axis=-1, keepdims=True)
    zi = state.zi
    restarted: tuple[int, ...] = ()
    if p.sos is not None:
        if x.ndim == 2 and not (np.isfinite(x).all() and (zi is None or np.isfinite(zi).all())):
            x, zi, restarted = _sosfilt_finite(p.sos, x, zi)
        else:
            if zi is None:  # steady state of the first sample: no ringing from a DC offset
                zi = sosfilt_zi(p.sos).reshape((len(p.sos),) + (1,) * (x.ndim - 2) + (2, 1)) * x[..., :1, :][None]
            x, zi = sosfilt(p.sos, x, axis=-2, zi=zi)
    phase = state.phase
    k = p.preprocessing.decimate
    if k > 1:
        first = (-phase) % k  # the next sample to keep
        n = x.shape[-2]
        x = x[..., first::k, :]
        phase = (phase + n) % k
    if p._mean is not None:
        x = (x - p._mean) * p._inv_std
    return x.astype(np.float32), _State(zi=zi, phase=phase, restarted=restarted)


def _sosfilt_finite(sos: np.ndarray, x: np.ndarray, zi: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """``sosfilt`` of ``x`` ``(n_times, n_channels)`` that keeps non-finite samples out of the state.

    Non-finite samples come out as NaN; each run of finite samples after one starts its channel's
    filter at the steady state of the run's first sample. ``zi`` ``(n_sections, 2, n_channels)``
    (None: none yet; NaN columns: start again at the next finite sample). Returns the output, the
    state after the chunk and the channels restarted after non-finite samples. Channels without
    trouble are filtered together, exactly as on the plain path.
    """
    from scipy.signal import sosfilt, sosfilt_zi

    steady = sosfilt_zi(sos)  # (n_sections, 2), per unit of input
    finite = np.isfinite(x)
    pending = np.zeros(x.shape[1], bool) if zi is None else ~np.isfinite(zi).all(axis=(0, 1))  # bad before
    zi = steady[:, :, None] * x[:1] if zi is None else zi.copy()  # a non-finite first sample: NaN, pending
    y = np.full_like(x, np.nan)
    clean = finite.all(axis=0) & ~pending
    if clean.any():
        y[:, clean], zi[:, :, clean] = sosfilt(sos, x[:, clean], axis=0, zi=zi[:, :, clean])
    restarted = []
    for c in np.flatnonzero(~clean):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], finite[:, c].astype(np.int8), [0]])))
        z = zi[:, :, c]
        for start, stop in zip(edges[::2], edges[1::2]):
            if start > 0 or pending[c]:  # follows a non-finite sample: start again, as after a gap
                z = steady * x[start, c]
                restarted.append(int(c))
            y[start:stop, c], z = sosfilt(sos, x[start:stop, c], zi=z)
        zi[:, :, c] = z if finite[-1, c] else np.nan  # ends non-finite: start again at the next finite sample
    return y, zi, tuple(sorted(set(restarted)))


def preprocess_continuous(preprocessing: Preprocessing, data: np.ndarray, ch_names: list[str],
                          sfreq: float) -> np.ndarray:
    """A whole continuous recording ``(n_channels, n_times)`` through the live chain, as if streamed
    from its first sample: returns ``(n_channels, n_out)`` float32."""
    chain = CausalPreprocessor(preprocessing, list(ch_names), sfreq)
    return np.ascontiguousarray(chain.process(np.asarray(data).T).T)


def preprocess_epochs(preprocessing: Preprocessing, eeg: np.ndarray, ch_names: list[str], sfreq: float,
                      batch: int = 256) -> np.ndarray:
    """Epochs ``(n_epochs, n_channels, n_times)``, each through the chain from its own first sample
    (give them a lead-in before the part that is used): returns ``(n_epochs, n_channels, n_out)``."""
    chain = CausalPreprocessor(preprocessing, list(ch_names), sfreq)
    if chain.identity:
        return np.asarray(eeg, np.float32)
    parts = []
    for start in range(0, len(eeg), batch):  # bounded memory: float64 copies of a few epochs at a time
        out, _ = _run(chain, np.swapaxes(np.asarray(eeg[start : start + batch]), -1, -2), _State())
        parts.append(np.swapaxes(out, -1, -2))
    return np.ascontiguousarray(np.concatenate(parts)) if parts else np.asarray(eeg, np.float32)


def check_against_card(preprocessing: Preprocessing, stored: np.ndarray | None, sfreq: float) -> np.ndarray | None:
    """The SOS cascade to run live: the card's stored coefficients when present (they are what the
    trainer ran), after checking that they match the design parameters (a card edited by hand, or
    a scipy that designs differently, is named rather than silently obeyed)."""
    designed = preprocessing.sos(sfreq)
    if stored is None:
        return designed
    if designed is None or stored.shape != designed.shape or not np.allclose(stored, designed, rtol=1e-6, atol=1e-9):
        raise PreprocessingError(
            "the card's filter coefficients do not match its filter description "
            f"({preprocessing.describe()}); re-export the model with `bci-train export`"
        )
    return stored
