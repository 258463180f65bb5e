"""Session adaptation without labels: re-centre a new session's inputs on its own statistics.

A model meets a new day with shifted impedances, a cap placed a little differently and another
amplifier gain: its inputs drift away from the training statistics it normalises with. Two
unsupervised corrections, both estimated from the first ``windows`` inputs of the new session (no
labels) and then frozen (a statistic that kept moving would follow the task as well as the drift):

- :class:`FeatureRecentring` (``mode="recentre"``, every student): the features' per channel x row
  centre and spread over the first windows (medians over the windows: robust to the blink in them)
  replace the training mean and standard deviation (the Euclidean alignment of the normalisation, as
  a new session's z-scoring). The live decoder and the offline
  evaluation call the same :meth:`FeatureRecentring.update` / :meth:`FeatureRecentring.statistics`.
- :class:`RiemannRecentring` (covariance pipelines): each covariance ``C`` becomes
  ``M^{-1/2} C M^{-1/2}``, ``M`` the Riemannian mean of the session's first covariances (Zanini et
  al., IEEE TBME 2018; pyRiemann's re-centering), so every session is centred at the identity.

Both assume the first windows hold the classes in about their usual proportions: a buffer of one
class moves that class's mean to the centre (pyRiemann #490). ``tools/bench_adaptation.py`` measures the
gain and that failure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MODES = ("off", "recentre")
MIN_SPREAD = 0.01  # smallest session spread, in training z units (a flat feature stays finite)


@dataclass(frozen=True)
class AdaptConfig:
    """Unsupervised session adaptation (off by default: it changes decisions).

    Attributes
    ----------
    mode : "off" or "recentre" (:class:`FeatureRecentring`).
    windows : inputs (live: decisions; offline: trials in time order) whose statistics re-centre the
        session; decisions before then use the training statistics and say so.
    """

    mode: str = "off"
    windows: int = 60

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"adaptation mode {self.mode!r}: choose from {', '.join(MODES)}")
        if self.windows < 2:
            raise ValueError(f"adaptation windows {self.windows}: at least 2 (a spread needs two inputs)")

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> AdaptConfig:
        d = d or {}
        unknown = set(d) - {"mode", "windows"}
        if unknown:
            raise ValueError(f"adaptation: unknown keys {sorted(unknown)}; known: mode, windows")
        return cls(**{k: (int(v) if k == "windows" else str(v)) for k, v in d.items()})


class FeatureRecentring:
    """Per channel x row centre and spread of the features of a session's first ``windows`` inputs.

    Inputs are features ``(..., n_channels, n_rows, n_columns)`` already normalised with the training
    statistics (what the network would see). Each input adds two small arrays, its per channel x row
    mean and mean square over its columns (two reductions: microseconds on the decision path). The
    estimates are robust over inputs: the centre is the median of the inputs' means, the spread the
    square root of the median of their variances about that centre (divided by the median of a
    chi-square's ``k`` degrees over ``k``, Wilson-Hilferty's ``(1 - 2 / 9k)^3`` with ``k`` columns, so it
    is the standard deviation for normal data). So the blink in a session's first minute does not set
    its scale: the training statistics came from trials cleaned of such artifacts, and a mean and SD
    over a buffer with one blink can be several times too wide. Once ready, :meth:`statistics` gives
    the session's normalisation in the training's feature units.
    """

    def __init__(self, config: AdaptConfig, n_channels: int, n_rows: int):
        self.config = config
        self.shape = (n_channels, n_rows)
        self._means: list[np.ndarray] = []
        self._squares: list[np.ndarray] = []
        self._columns = 0
        self._estimate: tuple[np.ndarray, np.ndarray] | None = None
        self.n = 0

    @property
    def ready(self) -> bool:
        return self.n >= self.config.windows

    def update(self, z: np.ndarray) -> bool:
        """Add inputs ``z`` (one ``(ch, rows, cols)`` or a batch ``(n, ch, rows, cols)``) until ready;
        non-finite inputs are left out. Returns True when this call made it ready."""
        if self.ready:
            return False
        z = z.reshape((-1, *z.shape[-3:]))[: self.config.windows - self.n]
        z = z[np.isfinite(z).all(axis=(1, 2, 3))]
        if len(z):
            self._means.append(z.mean(axis=-1, dtype=np.float64))
            self._squares.append(np.einsum("ncrt,ncrt->ncr", z, z, dtype=np.float64) / z.shape[-1])
            self._columns = z.shape[-1]
            self.n += len(z)
        if self.ready:
            self._estimate = self._robust()
            self._means, self._squares = [], []
        return self.ready

    def _robust(self) -> tuple[np.ndarray, np.ndarray]:
        """Centre and spread ``(ch, rows, 1)`` float32 over the inputs so far (see the class docstring)."""
        means, squares = np.concatenate(self._means), np.concatenate(self._squares)
        centre = np.median(means, axis=0)
        variances = squares - 2 * centre * means + centre**2  # each input's columns about the centre
        k = self._columns
        spread = np.sqrt(np.maximum(np.median(variances, axis=0), 0.0) / (1 - 2 / (9 * k)) ** 3)
        # a feature (nearly) constant in the buffer is not blown up: at most 100x the training's resolution
        return centre[..., None].astype(np.float32), np.maximum(spread, MIN_SPREAD)[..., None].astype(np.float32)

    def z_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """``(centre, spread)`` ``(ch, rows, 1)`` float32 of the inputs so far, in training z units."""
        if self._estimate is not None:
            return self._estimate
        if self.n < 2:
            raise ValueError(f"re-centring needs at least 2 inputs; it has {self.n}")
        return self._robust()

    def statistics(self, train_mean: np.ndarray, train_std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The session's ``(mean, std)`` in feature units, broadcastable like the training ones: inputs
        ``f`` normalised as ``(f - mean) / std`` are the session's (robust) z-scores."""
        zm, zs = self.z_statistics()
        return (train_mean + train_std * zm).astype(np.float32), (train_std * zs).astype(np.float32)

    def apply(self, z: np.ndarray) -> np.ndarray:
        """Inputs normalised with the training statistics → normalised with the session's (a new array)."""
        zm, zs = self.z_statistics()
        return ((z - zm) / zs).astype(np.float32)

    def summary(self) -> dict:
        """What the JSONL's ``adaptation_ready`` event records: mode, inputs used, how far the session's
        centre moved (the mean absolute shift over channels x rows, in training z units) and its spread's ratio."""
        zm, zs = self.z_statistics()
        return {"mode": self.config.mode, "windows": self.n, "shift_z": round(float(np.abs(zm).mean()), 4),
                "spread_ratio": round(float(zs.mean()), 4)}


def recentred(z: np.ndarray, buffer: np.ndarray, config: AdaptConfig = AdaptConfig(mode="recentre")) -> np.ndarray:
    """Offline: trials ``z`` ``(n, ch, rows, cols)`` (training-normalised, one session) re-centred on the
    statistics of trials ``buffer`` (indices, in time order: the session's first ones)."""
    rec = FeatureRecentring(config, z.shape[1], z.shape[2])
    rec.update(z[np.asarray(buffer)])
    return rec.apply(z)


class RiemannRecentring:
    """A scikit-learn step for covariance pipelines: ``(n, c, c)`` SPD matrices re-centred at the
    identity, ``C -> M^{-1/2} C M^{-1/2}``.

    ``fit`` takes ``M`` from the training covariances; :meth:`set_reference` replaces it with the
    Riemannian mean of a new session's first covariances (unlabelled) before that session's
    ``transform``. Put it before pyRiemann's ``TangentSpace`` or ``MDM``.
    """

    def __init__(self) -> None:
        self.inv_sqrt_: np.ndarray | None = None

    def get_params(self, deep: bool = True) -> dict:
        return {}

    def set_params(self, **params) -> RiemannRecentring:
        return self

    def set_reference(self, covs: np.ndarray) -> RiemannRecentring:
        from pyriemann.utils.base import invsqrtm
        from pyriemann.utils.mean import mean_riemann

        self.inv_sqrt_ = invsqrtm(mean_riemann(np.asarray(covs, np.float64)))
        return self

    def fit(self, covs: np.ndarray, y=None) -> RiemannRecentring:
        return self.set_reference(covs)

    def transform(self, covs: np.ndarray) -> np.ndarray:
        if self.inv_sqrt_ is None:
            raise ValueError("RiemannRecentring: fit it (or set_reference) before transform")
        w = self.inv_sqrt_
        return w @ np.asarray(covs, np.float64) @ w

    def fit_transform(self, covs: np.ndarray, y=None) -> np.ndarray:
        return self.fit(covs).transform(covs)
