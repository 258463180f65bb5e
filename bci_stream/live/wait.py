"""How the live loop waits for the next chunk: block in liblsl, or sleep until shortly before it is
due and poll, or spin.

A core that sleeps for the 20 ms between decisions wakes up cold (a low clock, a deep idle state,
caches and branch predictors taken over by others), and the decision after the wake-up runs
slower than back to back. Blocking in liblsl also adds a thread wake-up (a condition variable)
between the sample arriving and the loop running. ``poll`` sleeps until ``lead`` seconds before
the chunk that completes the next window is due, then polls the inlet without blocking, so the
core is already awake and running this thread when the data arrive; it costs about ``lead / hop``
of a core. ``prewarm`` also runs the network once on the last input when the poll starts (the
working set back in the caches). ``spin`` never sleeps: the lowest latency, one whole core.
CPU % against latency for each: ``tools/bench_latency.py --waits block,poll,prewarm,spin``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

WAIT_MODES = ("block", "poll", "prewarm", "spin")


@dataclass(frozen=True)
class WaitConfig:
    """How the loop waits for data.

    Attributes
    ----------
    mode : "block" (wait inside liblsl's pull), "poll" (sleep until ``lead`` s before the next
        chunk is due, then poll), "prewarm" (as poll, and run the network once on the last input
        when polling starts), or "spin" (poll without sleeping: a whole core; dedicated machines).
    lead : seconds before the due time that polling starts.
    grace : seconds after the due time that polling goes on before falling back to a blocking pull
        (a late chunk, or the stream's chunks not on the hop's beat).
    """

    mode: str = "block"
    lead: float = 0.001
    grace: float = 0.004

    def __post_init__(self) -> None:
        if self.mode not in WAIT_MODES:
            raise ValueError(f"wait mode must be one of {WAIT_MODES}; got {self.mode!r}")
        if self.lead < 0 or self.grace < 0:
            raise ValueError(f"lead and grace must be >= 0 s; got {self.lead}, {self.grace}")


class ChunkWaiter:
    """Pulls from a source (``pull(timeout)`` as :class:`bci_stream.live.session.Source`) the way ``config``
    says. ``clock`` (seconds, the due times' clock) and ``sleep`` are injectable for tests;
    ``touch`` is called when a ``prewarm`` poll starts.

    :meth:`due` predicts when a sample is expected from the stamps received (the stamp of the
    newest sample, plus the transport lag: the smallest of the recent ``clock() - stamp`` on receipt,
    which is a fresh chunk's, not one that waited in the queue while this thread slept).
    """

    def __init__(self, config: WaitConfig, source, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] = time.sleep, touch: Callable[[], None] | None = None):
        if clock is None:
            import pylsl  # the LSL clock the stamps are on

            clock = pylsl.local_clock
        self.config, self.source, self.clock, self.sleep, self.touch = config, source, clock, sleep, touch
        self.last_stamp: float | None = None  # LSL stamp of the newest sample received
        self._lags = np.full(32, np.inf)  # recent receipt - stamp, seconds
        self._n_lags = 0
        self.n_polls = 0  # non-blocking pulls made (a measure of the polling's cost)
        self.n_late = 0  # due times that passed with no data (fell back to a blocking pull)

    def pull(self, timeout: float, due: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Samples and stamps as ``source.pull``; waits at most about ``timeout`` s. ``due``: the
        ``clock()`` time the next decision's data are expected (None: unknown, block)."""
        mode = self.config.mode
        if mode == "block" or (due is None and mode != "spin"):
            return self._got(self.source.pull(timeout))
        now = self.clock()
        if mode == "spin":
            stop = now + timeout
            while True:
                got = self._got(self.source.pull(0.0))
                self.n_polls += 1
                if len(got[1]) or self.clock() >= stop:
                    return got
        # 1. sleep until `lead` before the due time (at most `timeout`, so the loop keeps its checks)
        wake = due - self.config.lead
        if wake - now > timeout:
            self.sleep(timeout)
            return self._got(self.source.pull(0.0))
        if wake > now:
            self.sleep(wake - now)
        # 2. the working set back in the caches
        if mode == "prewarm" and self.touch is not None:
            self.touch()
        # 3. poll until the data come or the grace period ends, then block for the rest
        stop = due + self.config.grace
        while True:
            got = self._got(self.source.pull(0.0))
            self.n_polls += 1
            if len(got[1]):
                return got
            now = self.clock()
            if now >= stop:
                self.n_late += 1
                return self._got(self.source.pull(timeout))

    def due(self, seconds_after_last: float) -> float | None:
        """``clock()`` time the sample ``seconds_after_last`` s after the newest one received is
        expected to arrive (None before any data)."""
        if self.last_stamp is None:
            return None
        lag = float(self._lags.min()) if self._n_lags else 0.0
        return self.last_stamp + seconds_after_last + max(0.0, lag)

    def forget(self) -> None:
        """Drop the timing history (after a gap or reconnection: the sender's timing may differ)."""
        self.last_stamp = None
        self._lags[:] = np.inf
        self._n_lags = 0

    def _got(self, got: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        stamps = got[1]
        if len(stamps):
            self.last_stamp = float(stamps[-1])
            self._lags[self._n_lags % self._lags.size] = self.clock() - self.last_stamp
            self._n_lags += 1
        return got
