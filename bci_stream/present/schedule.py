"""What the presenter shows and when: a seeded, interleaved sequence with fixation, duration,
jittered inter-stimulus interval, blocks with breaks and repeats (pure Python: testable without Qt)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bci_stream.contract.stimuli import Stimulus, StimulusError


@dataclass(frozen=True)
class PresentConfig:
    """How pictures are presented. Times in seconds.

    Attributes
    ----------
    trials : stimuli to show (None: every image ``repeats`` times).
    repeats : passes over the image set (each pass in a new shuffled, class-interleaved order).
    seed : the order and the ISI jitter.
    fixation : a fixation cross before each picture.
    duration : picture on screen.
    isi : blank after a picture (before the next fixation), mean.
    isi_jitter : the blank is ``isi`` + uniform(-isi_jitter, +isi_jitter).
    block_size : trials per block, a break between blocks (0: no breaks).
    break_seconds : length of a break.
    lead_in : blank seconds before the first trial (recorders and decoders connect meanwhile).
    """

    trials: int | None = None
    repeats: int = 1
    seed: int = 0
    fixation: float = 0.2
    duration: float = 0.3
    isi: float = 0.2
    isi_jitter: float = 0.05
    block_size: int = 0
    break_seconds: float = 5.0
    lead_in: float = 1.0

    def __post_init__(self) -> None:
        if self.duration <= 0 or self.fixation < 0 or self.isi < 0 or not 0 <= self.isi_jitter <= self.isi:
            raise ValueError("need duration > 0, fixation >= 0 and 0 <= isi_jitter <= isi; got "
                             f"duration {self.duration:g}, fixation {self.fixation:g}, isi {self.isi:g} "
                             f"+- {self.isi_jitter:g}")
        if self.repeats < 1 or (self.trials is not None and self.trials < 1):
            raise ValueError(f"need repeats >= 1 and trials >= 1; got {self.repeats}, {self.trials}")


@dataclass(frozen=True)
class Event:
    """One change of the screen at ``t`` s after the start: ``kind`` is "fixation", "stimulus" (the
    marker is pushed at its flip), "blank", "break" or "end"; ``stimulus`` for "stimulus"; ``trial``
    its 0-based number."""

    t: float
    kind: str
    stimulus: Stimulus | None = None
    trial: int = -1


def interleaved_order(stimuli: list[Stimulus], n: int, rng: np.random.Generator) -> list[Stimulus]:
    """``n`` stimuli: passes over the set, each shuffled, then reordered so that no class follows
    itself where another class is left (classes interleaved, not blocked)."""
    out: list[Stimulus] = []
    while len(out) < n:
        pool = [stimuli[i] for i in rng.permutation(len(stimuli))]
        while pool and len(out) < n:
            last = out[-1].cls if out else None
            pick = next((k for k, s in enumerate(pool) if s.cls != last), 0)
            out.append(pool.pop(pick))
    return out


def build_schedule(stimuli: list[Stimulus], config: PresentConfig) -> list[Event]:
    """The whole session's screen changes, in time order (see :class:`Event`)."""
    if not stimuli:
        raise StimulusError("no stimuli to present")
    rng = np.random.default_rng(config.seed)
    n = config.trials if config.trials is not None else config.repeats * len(stimuli)
    order = interleaved_order(stimuli, n, rng)
    events, t = [], config.lead_in
    for k, stim in enumerate(order):
        if config.block_size and k and k % config.block_size == 0:
            events.append(Event(t, "break", trial=k))
            t += config.break_seconds
        if config.fixation > 0:
            events.append(Event(t, "fixation", trial=k))
            t += config.fixation
        events.append(Event(t, "stimulus", stim, trial=k))
        t += config.duration
        events.append(Event(t, "blank", trial=k))
        t += config.isi + rng.uniform(-config.isi_jitter, config.isi_jitter)
    events.append(Event(t, "end", trial=n))
    return events
