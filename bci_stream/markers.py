"""LSL marker inlet (string stimulus markers, e.g. from PsychoPy or the phantom)."""

from __future__ import annotations

import pylsl
from pylsl.util import LostError

from bci_stream.clock import ClockCorrection
from bci_stream.source import resolve


class MarkerSource:
    """Non-blocking reader of a string marker stream: :meth:`pull` returns ``[(t_lsl, text)]``."""

    def __init__(self, name: str | None, stream_type: str = "Markers"):
        self.name = name
        self.stream_type = stream_type
        self.inlet: pylsl.StreamInlet | None = None
        self.clock: ClockCorrection | None = None

    def connect(self, timeout: float = 5.0) -> bool:
        info = resolve(self.name, self.stream_type, timeout)
        if info is None:
            return False
        if info.channel_format() != pylsl.cf_string:
            raise ValueError(f"marker stream {info.name()!r} is not a string stream")
        self.inlet = pylsl.StreamInlet(info, max_buflen=60, recover=True)  # clock: ClockCorrection
        self.inlet.open_stream(timeout=5.0)
        self.clock = ClockCorrection(self.inlet, info.hostname())
        return True

    def pull(self) -> list[tuple[float, str]]:
        if self.inlet is None:
            return []
        try:
            values, stamps = self.inlet.pull_chunk(timeout=0.0)
        except LostError:
            self.inlet = None
            return []
        if not stamps:
            return []
        offset = self.clock.update()
        return [(float(t) + offset, str(v[0])) for v, t in zip(values, stamps)]
