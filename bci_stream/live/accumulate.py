"""Evidence accumulation over repeated presentations (event mode): a stage ``Prediction -> Prediction``.

Labs repeat a stimulus (BCI2000's and BciPy's P300 spellers, an oddball block) to gain certainty. The
decisions of the repeats of one stimulus -- the same marker text, or every stimulus of a sequence
aimed at one target -- are combined by **summing their log-probabilities** and renormalising:

    log P(c | x_1..x_k) = sum_i [log p(c | x_i) - log prior(c)] + log prior(c) + const

which is the Bayes posterior of ``k`` repeats that are independent given the class (the naive-Bayes
assumption BciPy's dynamic stopping also makes). Averaging the probabilities instead is not a
posterior: it never grows more confident than its most confident repeat, so a confidence threshold
would never be reached by evidence adding up, and ten weak agreeing repeats (0.6 each) average to 0.6
where their product says 0.98. ``prior`` divides out the class prior the model's probabilities carry
(a classifier fit on unbalanced classes, e.g. an oddball's 1:5, would otherwise count it ``k`` times);
None: a flat prior (the plain sum).

Stopping rule (optional): once the accumulated top class reaches ``stop_confidence`` or the group holds
``max_repeats`` decisions, the decision is final (``final: true``) and the group starts again with the
next repeat. Reset rule: a marker matching ``reset_markers`` (a new target, a new sequence) empties
every group; a group whose last repeat is older than ``timeout`` s starts again.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bci_stream.live.prediction import Prediction

GROUPS = ("marker", "sequence")
_FLOOR = 1e-12  # log(0) guard: a probability of exactly 0 would veto its class for ever


@dataclass(frozen=True)
class AccumulateConfig:
    """How event-mode decisions are accumulated (off by default: it changes every decision).

    Attributes
    ----------
    enabled : accumulate at all.
    group : "marker" (repeats of the same marker text are one group) or "sequence" (every stimulus
        until a reset marker is one group: a sequence aimed at one target).
    stop_confidence : a group's decision is final once its top probability reaches this (None: never).
    max_repeats : ... or once it holds this many repeats (None: no limit).
    reset_markers : shell-style patterns (``fnmatch``) of markers that start every group again.
    timeout : seconds since a group's last repeat after which it starts again (None: never).
    prior : the class prior of the model's probabilities, divided out of all but one repeat
        (None: flat).
    """

    enabled: bool = False
    group: str = "marker"
    stop_confidence: float | None = None
    max_repeats: int | None = None
    reset_markers: tuple[str, ...] = ()
    timeout: float | None = None
    prior: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"accumulation group must be one of {', '.join(GROUPS)}; got {self.group!r}")
        if self.stop_confidence is not None and not 0.0 < self.stop_confidence <= 1.0:
            raise ValueError(f"stop confidence must be in (0, 1]; got {self.stop_confidence}")
        if self.max_repeats is not None and self.max_repeats < 1:
            raise ValueError(f"max repeats must be >= 1; got {self.max_repeats}")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"accumulation timeout must be > 0 s; got {self.timeout}")
        if self.prior is not None and (min(self.prior) <= 0 or abs(sum(self.prior) - 1.0) > 1e-3):
            raise ValueError(f"prior must be positive and sum to 1; got {self.prior}")

    def is_reset(self, marker: str) -> bool:
        return any(fnmatch.fnmatchcase(marker, p) for p in self.reset_markers)

    def describe(self) -> dict:
        """What the ``session_start`` record says (``enabled`` false: nothing else)."""
        if not self.enabled:
            return {"enabled": False}
        return {"enabled": True, "group": self.group, "stop_confidence": self.stop_confidence,
                "max_repeats": self.max_repeats, "reset_markers": list(self.reset_markers), "timeout": self.timeout,
                "prior": list(self.prior) if self.prior is not None else None, "rule": "summed log-probabilities"}


class _Group:
    __slots__ = ("log_sum", "n", "t_last")

    def __init__(self, n_classes: int):
        self.log_sum = np.zeros(n_classes)
        self.n = 0
        self.t_last = -np.inf


class Accumulator:
    """The stage: ``accumulator(prediction)`` -> the accumulated prediction (a new object; the single
    decision's top class and probabilities stay in its ``extra``). Call :meth:`markers` with every
    received marker (stimuli or not) so reset markers take effect."""

    def __init__(self, config: AccumulateConfig, n_classes: int):
        from bci_stream.live.prediction import top_k

        self._top_k = top_k
        if config.prior is not None and len(config.prior) != n_classes:
            raise ValueError(f"prior has {len(config.prior)} values; the model has {n_classes} classes")
        self.config = config
        self.n_classes = n_classes
        self.log_prior = np.log(np.asarray(config.prior, np.float64)) if config.prior is not None else None
        self._groups: dict[str, _Group] = {}
        self.decisions = 0  # accumulated decisions made
        self.finals = 0  # ... of which final (a stopping rule met)
        self.final_repeats = 0  # repeats summed over the final decisions
        self.resets = 0
        self.last: dict = {}  # the last decision: repeats, final, group (what the viewer shows)

    def markers(self, received: list[tuple[float, str]]) -> None:
        """Markers ``[(t_lsl, text)]`` as they arrive: a reset marker empties every group."""
        if self.config.reset_markers and any(self.config.is_reset(text) for _, text in received):
            self.reset()

    def reset(self) -> None:
        if self._groups:
            self.resets += 1
        self._groups.clear()

    def process(self, p: Prediction) -> Prediction:
        """The live stage (:class:`bci_stream.live.interfaces.Stage`): an event-locked decision accumulated,
        a continuous one passed on."""
        return self(p) if p.marker is not None else p

    def __call__(self, p: Prediction) -> Prediction:
        cfg = self.config
        key = p.marker if cfg.group == "marker" else ""
        group = self._groups.get(key)
        if group is None or (cfg.timeout is not None and p.t_lsl - group.t_last > cfg.timeout):
            group = self._groups[key] = _Group(self.n_classes)
        log_p = np.log(np.maximum(p.probabilities, _FLOOR))
        if self.log_prior is not None:
            log_p = log_p - self.log_prior
        group.log_sum += log_p
        group.n += 1
        group.t_last = p.t_lsl
        z = group.log_sum if self.log_prior is None else group.log_sum + self.log_prior
        posterior = np.exp(z - z.max())
        posterior /= posterior.sum()
        top = self._top_k(posterior, 5)
        final = bool((cfg.stop_confidence is not None and posterior[top[0]] >= cfg.stop_confidence)
                     or (cfg.max_repeats is not None and group.n >= cfg.max_repeats))
        repeats = group.n
        if final:
            del self._groups[key]  # the next repeat starts a new decision
            self.finals += 1
            self.final_repeats += repeats
        self.decisions += 1
        self.last = {"repeats": repeats, "final": final, "group": key}
        extra = {**p.extra, "accumulated": True, "repeats": repeats, "final": final,
                 "single_top1": p.top5[0], "single_probabilities": [round(float(v), 6) for v in p.probabilities]}
        return replace(p, probabilities=posterior.astype(p.probabilities.dtype, copy=False), top5=top,
                       extra=extra)

    def summary(self) -> dict:
        """JSON-able: decisions, final decisions and their mean repeats, resets, the last decision."""
        return {"enabled": True, "decisions": self.decisions, "final_decisions": self.finals,
                "mean_repeats_final": round(self.final_repeats / self.finals, 3) if self.finals else None,
                "resets": self.resets, "last": dict(self.last)}


def make_accumulator(config: AccumulateConfig, n_classes: int, embedding: bool = False) -> Accumulator | None:
    """The session's stage (None when accumulation is off); refused for an embedding model, whose
    decisions are retrievals, not class probabilities of one stimulus."""
    if not config.enabled:
        return None
    if embedding:
        raise ValueError("--accumulate combines class probabilities; an embedding model's decisions are gallery "
                         "retrievals: drop --accumulate")
    return Accumulator(config, n_classes)
