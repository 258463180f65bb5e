"""Events from a channel of the EEG stream (hardware tagging): trigger codes or a photodiode.

A marker input beside the LSL marker inlet (OpenViBE's hardware tagging). The event time is the LSL
stamp of the sample where the edge is, so it is sample-exact whatever the network did to a marker
stream. Two kinds:

- ``trigger``: an integer code channel (a parallel-port / TTL byte, the Muse CSV's ``Marker0``); a
  sample whose code differs from the previous sample's and is not 0 is an event, named by its code
  through ``codes`` (``"1:house;2:face"``, the card's mapping) or the code itself.
- ``photodiode``: an analogue light sensor; a rising crossing of ``threshold`` is an event, and no
  second one within ``holdoff`` s (the flicker of a screen refresh and noise on the edge would
  otherwise be several events).

When an LSL marker stream is connected too, each channel event is paired with the LSL marker of the
same stimulus (same text; a photodiode's: the nearest marker) within ``pair_window`` s and the offset
``t_channel - t_marker`` is kept (:class:`OffsetPairs`): what the marker path's latency costs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

KINDS = ("trigger", "photodiode")


def parse_codes(text: str | None) -> tuple[tuple[str, str], ...]:
    """``"1:house;2:face"`` -> ``(("1", "house"), ("2", "face"))`` (the data specs' ``event_id=`` form)."""
    if not text:
        return ()
    out = []
    for part in text.split(";"):
        code, colon, name = part.partition(":")
        if not colon or not code.strip() or not name.strip():
            raise ValueError(f"event codes {text!r}: write CODE:NAME;CODE:NAME, e.g. 1:house;2:face")
        out.append((code.strip(), name.strip()))
    return tuple(out)


@dataclass(frozen=True)
class ChannelEventsConfig:
    """Which channel carries the events and how its edges are found.

    Attributes
    ----------
    channel : the channel's label in the EEG stream (None: events come from an LSL marker stream).
    kind : "trigger" (integer codes) or "photodiode" (threshold crossing).
    threshold : photodiode: the level of a rising edge, in the channel's raw unit (required).
    holdoff : seconds after an event in which no other is taken (None: 0 for a trigger, 0.05 s for a
        photodiode).
    codes : trigger code -> marker text (``parse_codes``); a code not named keeps its number.
    photodiode_marker : the marker text of a photodiode event.
    pair_window : seconds within which an LSL marker is the same stimulus as a channel event (keep it
        under half the stimulus interval: a stimulus whose channel event was lost must not pair with
        its neighbour's marker).
    """

    channel: str | None = None
    kind: str = "trigger"
    threshold: float | None = None
    holdoff: float | None = None
    codes: tuple[tuple[str, str], ...] = ()
    photodiode_marker: str = "photodiode"
    pair_window: float = 0.2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"events kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if self.channel and self.kind == "photodiode" and self.threshold is None:
            raise ValueError("a photodiode channel needs its edge level: add --events-threshold LEVEL")
        if self.holdoff is not None and self.holdoff < 0:
            raise ValueError(f"hold-off must be >= 0 s; got {self.holdoff}")

    @property
    def holdoff_s(self) -> float:
        return self.holdoff if self.holdoff is not None else (0.05 if self.kind == "photodiode" else 0.0)

    def describe(self) -> dict:
        return {"channel": self.channel, "kind": self.kind, "threshold": self.threshold, "holdoff_s": self.holdoff_s,
                "codes": dict(self.codes)}


class EdgeDetector:
    """Stateful over chunks: :meth:`detect` ``(values (n,), stamps (n,))`` -> ``[(t_lsl, text)]``, one per
    edge, stamped with its sample's time. The previous chunk's last value is kept, so an edge on a
    chunk boundary is found once and a code held over many samples is one event."""

    def __init__(self, config: ChannelEventsConfig):
        self.config = config
        self.names = dict(config.codes)
        self.holdoff = config.holdoff_s
        self._prev: float = 0.0  # last code (trigger) / 1.0 if above the threshold (photodiode)
        self._last_t = -np.inf

    def reset(self) -> None:
        """Forget the previous value (a new connection: its first sample is compared with 0)."""
        self._prev, self._last_t = 0.0, -np.inf

    def detect(self, values: np.ndarray, stamps: np.ndarray) -> list[tuple[float, str]]:
        if len(values) == 0:
            return []
        cfg = self.config
        if cfg.kind == "trigger":
            level = np.rint(np.nan_to_num(values, nan=0.0))
            edges = (level != np.concatenate(([self._prev], level[:-1]))) & (level != 0)
        else:
            level = (values >= cfg.threshold).astype(np.float64)  # NaN: below
            edges = (level > 0) & (np.concatenate(([self._prev], level[:-1])) == 0)
        self._prev = float(level[-1])
        out = []
        for i in np.flatnonzero(edges):
            t = float(stamps[i])
            if t - self._last_t < self.holdoff:
                continue
            self._last_t = t
            out.append((t, self._name(level[i])))
        return out

    def _name(self, level: float) -> str:
        if self.config.kind == "photodiode":
            return self.config.photodiode_marker
        code = str(int(level))
        return self.names.get(code, code)


class OffsetPairs:
    """Channel events paired with LSL markers of the same stimulus; each pair's offset
    ``t_channel - t_marker`` (s) is passed to ``on_pair(record)`` and kept for :meth:`summary`.

    Either side may arrive first; each item pairs with the nearest one of the other side within
    ``window`` s; an item that can no longer be paired (the other side has moved
    more than ``window`` s past it) is counted as unpaired."""

    def __init__(self, window: float = 0.2, match_text: bool = True,
                 on_pair: Callable[[dict], None] | None = None, keep: int = 100_000):
        self.window, self.match_text, self.on_pair = window, match_text, on_pair
        self._channel: deque[tuple[float, str]] = deque()
        self._markers: deque[tuple[float, str]] = deque()
        self.offsets: deque[float] = deque(maxlen=keep)
        self.unpaired_channel = 0
        self.unpaired_markers = 0

    def channel(self, events: list[tuple[float, str]]) -> None:
        for t, text in events:
            self._add(t, text, self._channel, self._markers, from_channel=True)

    def markers(self, markers: list[tuple[float, str]]) -> None:
        for t, text in markers:
            self._add(t, text, self._markers, self._channel, from_channel=False)

    def _add(self, t: float, text: str, mine: deque, other: deque, from_channel: bool) -> None:
        while other and other[0][0] < t - self.window:  # too old to pair with anything from now on
            other.popleft()
            if from_channel:
                self.unpaired_markers += 1
            else:
                self.unpaired_channel += 1
        fits = [(abs(t_other - t), j) for j, (t_other, text_other) in enumerate(other)
                if abs(t_other - t) <= self.window and (not self.match_text or text_other == text)]
        if not fits:
            mine.append((t, text))
            return
        t_other, text_other = other[min(fits)[1]]  # the nearest: a missed event never shifts the pairs after it
        del other[min(fits)[1]]
        t_ch, t_mk = (t, t_other) if from_channel else (t_other, t)
        offset = t_ch - t_mk
        self.offsets.append(offset)
        if self.on_pair is not None:
            self.on_pair({"marker": text if from_channel else text_other, "t_channel": t_ch,
                          "t_marker": t_mk, "offset_ms": round(offset * 1e3, 4)})

    def summary(self) -> dict:
        """Pairs, median and 95th percentile of the offset and of its magnitude (ms), unpaired counts."""
        out = {"pairs": len(self.offsets), "unpaired_channel": self.unpaired_channel + len(self._channel),
               "unpaired_markers": self.unpaired_markers + len(self._markers)}
        if self.offsets:
            ms = np.asarray(self.offsets) * 1e3
            out.update(median_ms=round(float(np.median(ms)), 4), p95_ms=round(float(np.percentile(ms, 95)), 4),
                       p95_abs_ms=round(float(np.percentile(np.abs(ms), 95)), 4),
                       max_abs_ms=round(float(np.abs(ms).max()), 4))
        return out


class ChannelEvents:
    """The marker input of ``--events-from``: :meth:`feed` the events channel's values with their
    stamps -> new events ``[(t_lsl, text)]``; :meth:`lsl_markers` the LSL markers of the same stimuli
    (timed against, never decoded); :meth:`summary` for the session's end."""

    def __init__(self, config: ChannelEventsConfig, on_pair: Callable[[dict], None] | None = None):
        self.config = config
        self.detector = EdgeDetector(config)
        self.pairs = OffsetPairs(config.pair_window, match_text=config.kind == "trigger", on_pair=on_pair)
        self.n_events = 0
        self._found: list[tuple[float, str]] = []  # events not yet taken

    def feed(self, values: np.ndarray, stamps: np.ndarray) -> list[tuple[float, str]]:
        """The events channel's values ``(n,)`` of one pull and their LSL stamps ``(n,)`` -> the new events."""
        events = self.detector.detect(values, stamps)
        if events:
            self.n_events += len(events)
            self.pairs.channel(events)
            self._found.extend(events)
        return events

    def take(self, lsl_markers: list[tuple[float, str]]) -> list[tuple[float, str]]:
        """Time ``lsl_markers`` against the channel's events; return the events found since the last call."""
        self.lsl_markers(lsl_markers)
        out, self._found = self._found, []
        return out

    def lsl_markers(self, markers: list[tuple[float, str]]) -> None:
        if markers:
            self.pairs.markers(markers)

    def summary(self) -> dict:
        return {**self.config.describe(), "events": self.n_events, "offset_vs_lsl_markers": self.pairs.summary()}


def make_channel_events(config: ChannelEventsConfig, ch_names: list[str],
                        on_pair: Callable[[dict], None] | None = None) -> ChannelEvents | None:
    """The session's channel marker input (None without ``config.channel``); refuses a channel the
    model decodes (its steps would be read as EEG)."""
    if not config.channel:
        return None
    if config.channel.lower() in (c.lower() for c in ch_names):
        raise ValueError(f"--events-from {config.channel}: the model decodes that channel as EEG; an events channel "
                         "must be one the model's card does not list")
    return ChannelEvents(config, on_pair=on_pair)
