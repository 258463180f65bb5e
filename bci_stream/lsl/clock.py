"""Clock correction for LSL inlets: put a stream's timestamps on this machine's LSL clock.

liblsl's ``proc_clocksync`` adds each new offset estimate as it arrives. On a loaded machine one
estimate can be off by milliseconds (seen here: an EEG inlet and a marker inlet on the same host
disagreeing by 4 ms, so a marker landed 4 samples early). Two streams from this host share its
clock and need no correction at all; a remote stream gets the median of its recent estimates.
"""

from __future__ import annotations

import socket
from collections import deque

import numpy as np
import pylsl
from pylsl.util import LostError
from pylsl.util import TimeoutError as LSLTimeoutError


class ClockCorrection:
    """Seconds to add to an inlet's timestamps (open the inlet without ``proc_clocksync``).

    Parameters
    ----------
    inlet : an open ``pylsl.StreamInlet``.
    hostname : the stream's ``info.hostname()``; equal to this machine's: offset 0, never estimated.
    refresh : seconds between new estimates for a remote stream.
    keep : how many recent estimates the median is taken over.
    """

    def __init__(self, inlet: pylsl.StreamInlet, hostname: str, refresh: float = 5.0, keep: int = 12,
                 first_timeout: float = 2.0):
        self.inlet = inlet
        self.local = hostname == socket.gethostname()
        self.refresh = refresh
        self._estimates: deque[float] = deque(maxlen=keep)
        self._next = 0.0
        self.offset = 0.0
        if not self.local:
            self.update(timeout=first_timeout)

    def update(self, timeout: float = 0.0) -> float:
        """Take a new estimate if ``refresh`` s have passed; returns the current offset, seconds."""
        now = pylsl.local_clock()
        if self.local or now < self._next:
            return self.offset
        self._next = now + self.refresh
        try:
            self._estimates.append(self.inlet.time_correction(timeout=timeout))
        except (LSLTimeoutError, LostError):  # no estimate yet (or the stream just went): keep the last
            return self.offset
        self.offset = float(np.median(self._estimates))
        return self.offset

    def apply(self, stamps: np.ndarray) -> np.ndarray:
        """``stamps`` (n,) LSL seconds of the stream's clock → this machine's clock (no copy when local)."""
        if self.local:
            return stamps
        return stamps + self.update()
