"""Artifacts: bad channels repaired by spherical-spline interpolation, and Artifact Subspace Reconstruction.

One home, run by the trainer, the benchmarks and the live decoder alike (:class:`ArtifactChain`)::

    samples (n_times, n_channels) in the card's unit
      -> ChannelRepair   bad channels (flat, railed, noisy: :func:`channel_health`, the viewer's detector;
                         or non-finite samples) replaced by MNE's spherical-spline interpolation of the
                         good ones; too many bad: those channels become NaN, so the window is withheld
      -> CausalPreprocessor (the card's filters, reference, decimation, standardisation)
      -> CausalAsr       meegkit's ASR, calibrated on the training data (state in the card)

Both stages are off by default and chunk-invariant: every decision is taken at fixed sample counts
from the start of the stream (not at chunk edges), so a stream processed in LSL's chunks gives the
same samples as the whole recording processed in one call.

- The detector looks at the last ``span_s`` of input every ``block_s`` (flat: the last block as it
  came; noisy, railed: the span through its own causal ``detect_highpass`` filter, so a DC-coupled
  amplifier's offset and drift are neither railed nor noisy, and a channel stuck at its rail is
  flat). A check's verdict applies from the block after next: causal, and one block of slack lets
  the live loop run the check after its decisions (:meth:`ArtifactChain.idle`). Hysteresis: a
  channel is bad from its first flagged check until ``clear_s`` of checks in a row find it fine.
  Non-finite samples are repaired at once, sample by sample.
- The interpolation matrix of a set of bad channels comes from MNE's public API: ``interpolate_bads``
  on a ``RawArray`` whose data are the identity, on the standard 10-05 montage; one matrix per bad
  set, cached (single channels precomputed when the stage is built).
- meegkit's ``ASR.transform`` is stateful (filter state, covariance memory, reconstruction matrix),
  but its output depends on how the stream is cut into calls: it takes one covariance and one
  reconstruction matrix per call. :class:`CausalAsr` therefore feeds it fixed blocks of ``block``
  samples and applies the reconstruction matrix that the blocks up to ``lag`` blocks back produced
  (blended across each block with meegkit's raised cosine). The output is never delayed; the
  price is a reaction time of ``lag`` to ``lag + 1`` blocks. With ``lag >= 2`` the update
  (meegkit's ``transform`` of one block, about half a millisecond) is never needed by the chunk
  being processed: the live loop runs it after the turn's decisions (:meth:`ArtifactChain.idle`).
  meegkit's covariance memory is one block (see :func:`calibrate_asr` for why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

BAD_CHANNEL_MODES = ("off", "withhold", "repair")


class ArtifactError(ValueError):
    """An artifact setting or stored state that cannot be used (names the problem and the next step)."""


# --- the detector (also the viewer's channel-health panel) -------------------------------------------
def channel_health(window: np.ndarray, ch_names: list[str], rail_uv: float = 5000.0, flat_uv: float = 0.1,
                   noisy_factor: float = 8.0) -> dict[str, list[str]]:
    """Bad channels of ``window`` ``(n_times, n_channels)`` µV: ``{"flat": [...], "railed": [...],
    "noisy": [...]}`` (names): flat = peak-to-peak below ``flat_uv``; railed = at or beyond
    ``rail_uv``; noisy = standard deviation above ``noisy_factor`` times the channels' median."""
    if window.shape[0] < 2:
        return {"flat": [], "railed": [], "noisy": []}
    ptp = np.ptp(window, axis=0)
    std = window.std(axis=0)
    railed = np.abs(window).max(axis=0) >= rail_uv
    flat = (ptp < flat_uv) & ~railed  # a channel stuck at the rail is railed, not flat
    median = np.median(std[~flat]) if (~flat).any() else 0.0
    noisy = (std > noisy_factor * median) & ~railed & ~flat if median > 0 else np.zeros_like(flat)
    return {kind: [ch_names[i] for i in np.flatnonzero(mask)] for kind, mask in
            (("flat", flat), ("railed", railed), ("noisy", noisy))}


@dataclass(frozen=True)
class RepairConfig:
    """Bad-channel handling (``bci-stream --bad-channels``).

    Attributes
    ----------
    mode : "off" (samples untouched: today's behaviour), "withhold" (a window with a bad channel is
        withheld) or "repair" (bad channels interpolated; withheld beyond ``max_bad``).
    max_bad : most channels repaired at once (None: a quarter of the channels, at least 1).
    block_s : seconds between two checks of the detector.
    span_s : seconds of input each check looks at.
    clear_s : a bad channel is good again after this long without being flagged (hysteresis).
    flat_uv, noisy_factor : :func:`channel_health`'s thresholds (peak-to-peak µV, times the channels'
        median standard deviation).
    rail_uv : excursion (µV, after the detector's high-pass) that counts as railed; None: no such
        check (the default: amplifiers and data sets differ by orders of magnitude in scale, and a
        channel stuck at its rail is flat anyway, one that keeps hitting it noisy).
    detect_highpass : the detector's own high-pass, Hz (what it sees only; the samples are not filtered).
    """

    mode: str = "off"
    max_bad: int | None = None
    block_s: float = 0.25
    span_s: float = 1.0
    clear_s: float = 2.0
    flat_uv: float = 0.1
    rail_uv: float | None = None
    noisy_factor: float = 8.0
    detect_highpass: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in BAD_CHANNEL_MODES:
            raise ArtifactError(f"bad-channel mode must be one of {', '.join(BAD_CHANNEL_MODES)}; got {self.mode!r}")
        if self.max_bad is not None and self.max_bad < 0:
            raise ArtifactError(f"max_bad must be >= 0; got {self.max_bad}")
        if not (0 < self.block_s <= self.span_s and self.clear_s >= 0):
            raise ArtifactError("the detector needs 0 < block_s <= span_s and clear_s >= 0")

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def limit(self, n_channels: int) -> int:
        """Channels that may be repaired at once (0 in withhold mode)."""
        if self.mode != "repair":
            return 0
        return self.max_bad if self.max_bad is not None else max(1, n_channels // 4)

    def describe(self) -> str:
        return {"off": "off", "withhold": "withhold windows with a bad channel"}.get(
            self.mode, f"interpolate up to {self.max_bad if self.max_bad is not None else 'a quarter of the'} "
                       "bad channel(s) (MNE spherical splines), withhold beyond")


@lru_cache(maxsize=256)
def interpolation_matrix(ch_names: tuple[str, ...], bad: tuple[str, ...]) -> np.ndarray:
    """``(n_channels, n_channels)`` linear map ``y = M @ x`` that replaces the ``bad`` channels by MNE's
    spherical-spline interpolation of the others (good rows are the identity), on the standard 10-05
    montage. Computed by ``interpolate_bads`` on an identity ``RawArray``: its output is the map."""
    try:
        import mne
    except ImportError as err:
        raise ArtifactError("bad-channel repair needs MNE: pip install 'bci-stream[artifacts]'") from err
    from bci_stream.contract.montage import channel_positions

    n = len(ch_names)
    if len(bad) >= n - 2:
        raise ArtifactError(f"cannot interpolate {len(bad)} of {n} channels: at least 3 good ones are needed")
    try:
        pos = channel_positions(list(ch_names))
    except ValueError as err:
        raise ArtifactError(f"bad-channel repair needs 10-05 channel names: {err}") from err
    info = mne.create_info(list(ch_names), 1000.0, "eeg")
    raw = mne.io.RawArray(np.eye(n), info, verbose="error")
    raw.set_montage(mne.channels.make_dig_montage(dict(zip(ch_names, pos)), coord_frame="head"), verbose="error")
    raw.info["bads"] = list(bad)
    # a fixed origin: MNE's head-sphere fit is ill-posed on a few electrodes (a Muse has four)
    raw.interpolate_bads(reset_bads=True, origin=(0.0, 0.0, 0.04), verbose="error")
    out = raw.get_data()
    out.setflags(write=False)
    return out


@dataclass
class ChannelRepair:
    """Causal bad-channel handling of one stream at the input rate (see the module docstring).

    ``process(samples (n_times, n_channels))`` returns the samples with bad channels interpolated
    (float64; the input itself when nothing is bad) and appends what changed to :attr:`changes`:
    ``{"sample", "channel", "bad", "reason"}`` dicts (``sample``: input samples since the last reset).
    ``to_uv`` converts the stream's unit to µV for the detector's thresholds.
    """

    config: RepairConfig
    ch_names: list[str]
    sfreq: float
    to_uv: float = 1.0
    changes: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.ch_names)
        self.block = max(1, int(round(self.config.block_s * self.sfreq)))
        self.span = max(self.block, int(round(self.config.span_s * self.sfreq)))
        self.clear_checks = int(math.ceil(self.config.clear_s / (self.block / self.sfreq)))
        self.max_bad = min(self.config.limit(n), max(0, n - 3))
        self._cache: dict[bytes, tuple] = {}
        from scipy.signal import butter, sosfilt_zi

        self._sos = butter(2, self.config.detect_highpass, "highpass", fs=self.sfreq, output="sos")
        self._steady = sosfilt_zi(self._sos)[:, :, None]  # (sections, 2, 1) per unit of input
        if self.max_bad:
            for c in self.ch_names:  # MNE imported and single-channel maps made before the stream starts
                interpolation_matrix(tuple(self.ch_names), (c,))
        self.reset()

    def reset(self) -> None:
        """Forget the history (after a gap): nothing is bad until the detector says so again."""
        self._history = np.zeros((0, len(self.ch_names)))  # the detector's high-passed input, µV
        self._finite = np.zeros((0, len(self.ch_names)), bool)
        self._raw = np.zeros((0, len(self.ch_names)))  # the last block as it came, µV
        self._block_raw: list[np.ndarray] = []  # this block's input so far
        self._queue: list[np.ndarray] = []  # complete blocks not yet checked
        self._checks = 0  # blocks checked
        self._masks = {0: np.zeros(len(self.ch_names), bool)}  # checks done -> the bad set they leave
        self._zi = None
        self._count = 0
        self._clean_checks = np.zeros(len(self.ch_names), int)  # checks in a row without a flag
        self._bad = np.zeros(len(self.ch_names), bool)
        self._reasons: dict[int, str] = {}
        self._refused = False

    @property
    def bad_channels(self) -> list[str]:
        return [self.ch_names[i] for i in np.flatnonzero(self._bad)]

    def process(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples)
        out = None
        start = 0
        while start < len(x):
            k, pos = divmod(self._count, self.block)
            stop = min(len(x), start + self.block - pos)  # up to the end of this block
            while self._checks < k - 1:  # block k obeys the checks of blocks 0..k-2 (idle() ran them, or now)
                self._check()
            mask = self._masks[max(0, k - 1)]
            if mask.sum() <= self.max_bad:
                self._refused = False  # the next refusal is a new episode
            part = x[start:stop]
            fixed = self._repair(part, mask)
            if fixed is not part:
                if out is None:
                    out = np.array(x, np.float64)
                out[start:stop] = fixed
            self._block_raw.append(part)
            self._count += len(part)
            if self._count % self.block == 0:
                self._queue.append(np.concatenate(self._block_raw) if len(self._block_raw) > 1 else self._block_raw[0])
                self._block_raw = []
            start = stop
        return x if out is None else out

    def idle(self) -> None:
        """Run the checks of complete blocks now (the live loop calls it after its decisions): their
        verdicts apply from the block after next either way, so when they run changes nothing."""
        while self._queue:
            self._check()

    def _repair(self, part: np.ndarray, bad_now: np.ndarray) -> np.ndarray:
        finite = np.isfinite(part).all(axis=1)
        if finite.all():
            if not bad_now.any():
                return part
            masks, inverse = bad_now[None], np.zeros(len(part), int)  # the usual case: one bad set
        else:  # per sample: the detector's channels and any non-finite sample
            masks, inverse = np.unique(~np.isfinite(part) | bad_now, axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
        out = np.array(part, np.float64)
        for k, mask in enumerate(masks):
            if not mask.any():
                continue
            rows = np.arange(len(part)) if len(masks) == 1 else np.flatnonzero(inverse == k)
            bad, good, weights = self._weights(mask)
            if weights is None:
                out[np.ix_(rows, bad)] = np.nan  # unrepairable: the window is withheld
                self._refuse(mask, rows[0])
                continue
            out[np.ix_(rows, bad)] = out[np.ix_(rows, good)] @ weights.T
        return out

    def _weights(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(bad, good, W)`` of a bad set: bad channels = good channels @ W.T (None: too many bad)."""
        key = mask.tobytes()
        if key not in self._cache:
            bad, good = np.flatnonzero(mask), np.flatnonzero(~mask)
            weights = None
            if len(bad) <= self.max_bad:
                m = interpolation_matrix(tuple(self.ch_names), tuple(self.ch_names[i] for i in bad))
                weights = np.ascontiguousarray(m[np.ix_(bad, good)])
            self._cache[key] = (bad, good, weights)
        return self._cache[key]

    def _refuse(self, mask: np.ndarray, row: int) -> None:
        if not self._refused:  # said once per episode, not once per chunk
            self._refused = True
            self.changes.append({"sample": self._count + int(row), "channels": [self.ch_names[i] for i in np.flatnonzero(mask)],
                                 "withheld": True, "max_bad": self.max_bad})

    def _check(self) -> None:
        """One check of the detector over the last ``span`` input samples; its verdict holds from the next."""
        from scipy.signal import sosfilt

        raw = self._queue.pop(0)
        self._checks += 1
        finite_now = np.isfinite(raw)
        x = np.where(finite_now, raw, 0.0) * self.to_uv  # a dropout is flagged as such, not filtered
        if self._zi is None:
            self._zi = self._steady * x[:1]  # the steady state of the first sample: no start-up transient
        y, self._zi = sosfilt(self._sos, x, axis=0, zi=self._zi)
        self._history = np.concatenate([self._history, y])[-self.span:]
        self._finite = np.concatenate([self._finite, finite_now])[-self.span:]
        self._raw = x
        h = self._history
        finite = self._finite.all(axis=0)
        flagged = {int(i): "non-finite samples" for i in np.flatnonzero(~finite)}
        if finite.sum() >= 3 and len(h) >= 2:
            cfg = self.config
            keep = np.flatnonzero(finite)
            x = h[:, keep]
            rail = np.inf if cfg.rail_uv is None else cfg.rail_uv
            health = channel_health(x, [str(i) for i in keep], rail, cfg.flat_uv, cfg.noisy_factor)
            for kind, names in health.items():
                flagged.update({int(i): kind for i in names})
            # flat over the last block as it came: a dead channel is found within a block, not once the
            # high-pass has forgotten the step to its last value
            flat = np.flatnonzero(finite & (np.ptp(self._raw, axis=0) < cfg.flat_uv))
            flagged.update({int(i): "flat" for i in flat})
        now = (self._checks + 1) * self.block  # where this verdict takes effect (the block after next)
        for i in range(len(self.ch_names)):
            if i in flagged:
                self._clean_checks[i] = 0
                if not self._bad[i]:
                    self._bad[i] = True
                    self._reasons[i] = flagged[i]
                    self.changes.append({"sample": now, "channel": self.ch_names[i], "bad": True, "reason": flagged[i]})
            elif self._bad[i]:
                self._clean_checks[i] += 1
                if self._clean_checks[i] >= self.clear_checks:
                    self._bad[i] = False
                    self.changes.append({"sample": now, "channel": self.ch_names[i], "bad": False,
                                         "reason": self._reasons.pop(i, "")})
        self._masks[self._checks] = self._bad.copy()
        self._masks.pop(self._checks - 3, None)  # never asked for again
        if self._bad.any():
            self._weights(self._bad)  # a new set's spline map made here (after the decisions), not when used


# --- ASR ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AsrState:
    """A calibrated ASR (card field ``artifacts.asr``): meegkit's mixing ``M`` and threshold ``T``
    matrices ``(n_channels, n_channels)`` and the settings its online part needs.

    ``sfreq`` is the rate ASR runs at (the model's, after the card's decimation); ``block`` samples
    per update; ``lag`` blocks between a block and the samples its reconstruction applies to.
    """

    ch_names: tuple[str, ...]
    sfreq: float
    cutoff: float
    mixing: tuple[tuple[float, ...], ...]
    threshold: tuple[tuple[float, ...], ...]
    block: int = 16
    lag: int = 2
    method: str = "euclid"
    memory: int | None = None

    def to_dict(self) -> dict:
        return {"ch_names": list(self.ch_names), "sfreq": self.sfreq, "cutoff": self.cutoff, "block": self.block,
                "lag": self.lag, "method": self.method, "memory": self.memory,
                "mixing": [list(r) for r in self.mixing], "threshold": [list(r) for r in self.threshold]}

    @classmethod
    def from_dict(cls, data: dict) -> AsrState:
        try:
            state = cls(ch_names=tuple(data["ch_names"]), sfreq=float(data["sfreq"]), cutoff=float(data["cutoff"]),
                        mixing=tuple(tuple(float(v) for v in r) for r in data["mixing"]),
                        threshold=tuple(tuple(float(v) for v in r) for r in data["threshold"]),
                        block=int(data.get("block", 16)), lag=int(data.get("lag", 2)),
                        method=str(data.get("method", "euclid")),
                        memory=None if data.get("memory") is None else int(data["memory"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ArtifactError(f"the card's ASR state is incomplete ({err}); re-fit with `bci-train fit --asr`") from err
        state.check(list(state.ch_names), state.sfreq)
        return state

    def check(self, ch_names: list[str], sfreq: float) -> None:
        """Refuse a state that does not fit a model of ``ch_names`` at ``sfreq`` Hz (one line each)."""
        n = len(ch_names)
        if list(self.ch_names) != list(ch_names):
            raise ArtifactError(f"the card's ASR state is for channels {list(self.ch_names)[:8]} but the model reads "
                                f"{list(ch_names)[:8]}; re-fit with `bci-train fit --asr`")
        for name, m in (("mixing", self.mixing), ("threshold", self.threshold)):
            a = np.asarray(m, float)
            if a.shape != (n, n) or not np.isfinite(a).all():
                raise ArtifactError(f"the card's ASR {name} matrix is {a.shape}, not ({n}, {n}) finite values; "
                                    "re-fit with `bci-train fit --asr`")
        if abs(self.sfreq - sfreq) > 1e-6 * sfreq:
            raise ArtifactError(f"the card's ASR runs at {self.sfreq:g} Hz but the model at {sfreq:g} Hz; "
                                "re-fit with `bci-train fit --asr`")
        if self.block < 1 or self.lag < 1 or self.cutoff <= 0 or self.method != "euclid":
            raise ArtifactError("the card's ASR settings are out of range (block >= 1, lag >= 1, cutoff > 0, "
                                "method euclid)")

    def describe(self) -> str:
        return (f"ASR (meegkit, cutoff {self.cutoff:g} SD, {self.block}-sample blocks, reacts after {self.lag} "
                f"block(s))")


def _meegkit_asr(sfreq: float, cutoff: float, method: str, memory: int | None):
    try:
        from meegkit.asr import ASR
    except ImportError as err:
        raise ArtifactError("this model uses ASR, which needs meegkit: pip install 'bci-stream[artifacts]'") from err
    return ASR(sfreq=sfreq, cutoff=cutoff, method=method, memory=memory)


def calibrate_asr(data: np.ndarray | list[np.ndarray], ch_names: list[str], sfreq: float, cutoff: float,
                  block: int | None = None, lag: int = 2, method: str = "euclid") -> AsrState:
    """Calibrate ASR on clean, high-passed data ``(n_channels, n_times)`` (or a list of recordings,
    joined) at ``sfreq`` Hz with meegkit's ``ASR.fit`` (it picks the clean windows itself). ``block``
    default: a sixteenth of a second."""
    parts = [np.asarray(d, np.float64) for d in (data if isinstance(data, list) else [data])]
    x = np.concatenate([p[:, np.isfinite(p).all(axis=0)] for p in parts], axis=1)
    if x.shape[1] < 30 * sfreq:
        raise ArtifactError(f"ASR calibration needs at least 30 s of data; got {x.shape[1] / sfreq:.1f} s")
    if cutoff <= 0:
        raise ArtifactError(f"ASR cutoff must be > 0 standard deviations; got {cutoff:g}")
    if method != "euclid":
        raise ArtifactError("ASR method must be 'euclid' (meegkit's 'riemann' needs pymanopt)")
    block = block or max(1, int(round(sfreq / 16)))
    asr = _meegkit_asr(sfreq, cutoff, method, block)
    asr.fit(x)
    m, t = asr.state_["M"], asr.state_["T"]
    # memory = one block: each update sees its block's covariance alone. meegkit's default (2 s) takes
    # the geometric median over 32 such blocks, which by design ignores anything shorter than a
    # second (a blink: measured, 86-100 % of an injected blink left) and costs ~5 ms per block.
    return AsrState(ch_names=tuple(ch_names), sfreq=float(sfreq), cutoff=float(cutoff),
                    mixing=tuple(map(tuple, np.asarray(m, float).tolist())),
                    threshold=tuple(map(tuple, np.asarray(t, float).tolist())),
                    block=block, lag=lag, method=method, memory=block)


class CausalAsr:
    """meegkit's ASR on consecutive chunks ``(n_times, n_channels)`` at the model's rate, chunk-invariant
    (module docstring). Non-finite samples pass through; a block holding one does not update ASR."""

    def __init__(self, state: AsrState):
        self.state = state
        self.reset()

    def reset(self) -> None:
        s = self.state
        self._asr = _meegkit_asr(s.sfreq, s.cutoff, s.method, s.memory)
        if not hasattr(self._asr, "_fitted"):
            raise ArtifactError("this meegkit's ASR has no fitted flag; install meegkit 0.2")
        # meegkit's documented state_ (M, T, R) for successive transform() calls, from the card
        self._asr.state_ = {"M": np.asarray(s.mixing, float), "T": np.asarray(s.threshold, float), "R": None}
        self._asr._fitted = True
        self._eye = np.eye(len(s.ch_names))
        self._r = {0: self._eye}  # j -> the reconstruction after blocks 0..j-1 (0: none yet, the identity)
        self._fed = 0  # blocks given to meegkit
        self._count = 0
        self._block_buf: list[np.ndarray] = []
        self._pending: list[np.ndarray] = []  # complete blocks not yet given to meegkit

    def _matrix(self, j: int) -> np.ndarray:
        """The reconstruction after blocks ``0..j-1`` (identity before any), running pending updates."""
        j = max(0, j)
        while self._fed < j:
            self._update()
        return self._r[j]

    def _update(self) -> None:
        block = self._pending.pop(0)
        previous = self._r[self._fed]
        self._fed += 1
        if np.isfinite(block).all():
            self._asr.transform(block.T)  # its output is discarded: only the new R is used (module docstring)
            r = self._asr.state_["R"]
            self._r[self._fed] = previous if r is None or np.array_equal(r, previous) else np.asarray(r)
        else:
            self._r[self._fed] = previous
        for old in [i for i in self._r if i < self._fed - self.state.lag - 2]:  # never needed again
            del self._r[old]

    def idle(self) -> None:
        """Run the updates later samples will need (the live loop calls it after its decisions)."""
        while self._pending:
            self._update()

    def process(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples, np.float64)
        b, lag = self.state.block, self.state.lag
        out = np.empty_like(x)
        start = 0
        while start < len(x):
            k, pos = divmod(self._count, b)
            stop = min(len(x), start + b - pos)
            r_old, r_new = self._matrix(k - lag), self._matrix(k - lag + 1)
            part = x[start:stop]
            if r_old is r_new and (r_new is self._eye or np.array_equal(r_new, self._eye)):
                out[start:stop] = part
            else:
                w = ((1 - np.cos(np.pi * np.arange(pos + 1, pos + 1 + len(part)) / b)) / 2)[:, None]
                out[start:stop] = w * (part @ r_new.T) + (1 - w) * (part @ r_old.T)
            self._block_buf.append(part)
            self._count += len(part)
            if self._count % b == 0:
                self._pending.append(np.concatenate(self._block_buf))
                self._block_buf = []
            start = stop
        return out


def needs_highpass(preprocessing) -> None:
    """ASR's statistics need zero-mean data: refuse a chain without a high-pass or band-pass."""
    if not any(f.kind in ("highpass", "bandpass") for f in preprocessing.filters):
        raise ArtifactError("ASR needs high-passed data: add --highpass HZ or --bandpass LO HI to the fit")


def asr_continuous(state: AsrState, data: np.ndarray) -> np.ndarray:
    """A whole preprocessed recording ``(n_channels, n_times)`` through :class:`CausalAsr` from its first
    sample, as if streamed: ``(n_channels, n_times)`` float32."""
    return np.ascontiguousarray(CausalAsr(state).process(np.asarray(data).T).T.astype(np.float32))


# --- the card -----------------------------------------------------------------------------------
def check_card_artifacts(artifacts: dict, ch_names: list[str], sfreq: float) -> AsrState | None:
    """The card's ``artifacts`` entry checked against its channels and rate: the ASR state or None."""
    if not artifacts:
        return None
    unknown = set(artifacts) - {"asr"}
    if unknown:
        raise ArtifactError(f"card artifacts have unknown fields {sorted(unknown)}")
    if not artifacts.get("asr"):
        return None
    state = AsrState.from_dict(artifacts["asr"])
    state.check(list(ch_names), sfreq)
    return state


# --- the chain ----------------------------------------------------------------------------------
class ArtifactChain:
    """:class:`ChannelRepair` → the card's :class:`~bci_stream.contract.preprocessing.CausalPreprocessor` →
    :class:`CausalAsr`, with the preprocessor's interface (``process``, ``process_stamped``, ``reset``,
    ``restarted``, ``out_sfreq``) plus :meth:`idle` and :meth:`drain_changes`."""

    identity = False

    def __init__(self, chain, repair: ChannelRepair | None = None, asr: CausalAsr | None = None):
        self.chain, self.repair, self.asr = chain, repair, asr
        self.preprocessing = chain.preprocessing

    @property
    def out_sfreq(self) -> float:
        return self.chain.out_sfreq

    @property
    def restarted(self) -> tuple[int, ...]:
        return self.chain.restarted

    def reset(self) -> None:
        for stage in (self.repair, self.chain, self.asr):
            if stage is not None:
                stage.reset()

    def _after(self, x: np.ndarray) -> np.ndarray:
        return x if self.asr is None or len(x) == 0 else self.asr.process(x).astype(np.float32)

    def process(self, samples: np.ndarray) -> np.ndarray:
        """The next chunk ``(n_times, n_channels)`` → ``(n_out, n_channels)`` float32."""
        x = self.repair.process(samples) if self.repair is not None else samples
        return self._after(np.asarray(self.chain.process(x), np.float32))

    def process_stamped(self, samples: np.ndarray, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.repair.process(samples) if self.repair is not None else samples
        out, kept = self.chain.process_stamped(x, stamps)
        return self._after(np.asarray(out, np.float32)), kept

    def idle(self) -> None:
        """Work that later samples need and this chunk did not (detector checks, ASR updates): run it off
        the decision path."""
        for stage in (self.repair, self.asr):
            if stage is not None:
                stage.idle()

    def drain_changes(self) -> list[dict]:
        """Bad-channel changes since the last call (:class:`ChannelRepair`), oldest first."""
        if self.repair is None or not self.repair.changes:
            return []
        out, self.repair.changes = self.repair.changes, []
        return out

    def describe(self) -> dict:
        return {"bad_channels": self.repair.config.describe() if self.repair is not None else "off",
                "asr": self.asr.state.describe() if self.asr is not None else "off"}


def build_chain(chain, ch_names: list[str], repair: RepairConfig = RepairConfig(), asr: AsrState | None = None,
                unit: str = "uV"):
    """``chain`` itself when neither stage is on (the default path is untouched), else an :class:`ArtifactChain`
    (``unit``: the samples' unit, for the detector's µV thresholds)."""
    if not repair.enabled and asr is None:
        return chain
    stage = None
    if repair.enabled:
        from bci_stream.contract.units import conversion_factor

        if unit == "a.u.":
            raise ArtifactError("bad-channel detection needs samples in volts (this model's unit is a.u.); "
                                "use --bad-channels off")
        stage = ChannelRepair(repair, list(ch_names), chain.sfreq, to_uv=conversion_factor(unit, "uV"))
    return ArtifactChain(chain, stage, CausalAsr(asr) if asr is not None else None)


def artifacts_continuous(preprocessing, data: np.ndarray, ch_names: list[str], sfreq: float,
                         repair: RepairConfig = RepairConfig(), asr: AsrState | None = None,
                         unit: str = "uV") -> np.ndarray:
    """A whole recording ``(n_channels, n_times)`` through the live chain with its artifact stages, as if
    streamed from its first sample: ``(n_channels, n_out)`` float32 (NaN where a window must be withheld)."""
    from bci_stream.contract.preprocessing import CausalPreprocessor

    chain = build_chain(CausalPreprocessor(preprocessing, list(ch_names), sfreq), ch_names, repair, asr, unit)
    return np.ascontiguousarray(np.asarray(chain.process(np.asarray(data).T), np.float32).T)
