"""A fixed-size ring buffer of samples and their LSL timestamps whose latest window is always contiguous."""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """The last ``capacity`` samples of ``n_channels`` channels, time-major.

    Every sample is written twice (at ``i`` and ``i + capacity``) so that any window of up to
    ``capacity`` samples is one contiguous slice: reading never copies or wraps. ``lock`` guards
    writes against readers on other threads (the viewer); the acquisition thread needs no lock to
    read what it wrote itself.
    """

    def __init__(self, n_channels: int, capacity: int):
        if capacity < 1:
            raise ValueError("capacity must be >= 1 sample")
        self.n_channels = n_channels
        self.capacity = capacity
        self._data = np.zeros((2 * capacity, n_channels), np.float32)
        self._times = np.zeros(2 * capacity, np.float64)
        self.count = 0  # samples written since the last reset (absolute index of the next sample)
        self.start_index = 0  # absolute sample index at the last reset
        self.lock = threading.Lock()

    def write(self, samples: np.ndarray, timestamps: np.ndarray) -> None:
        """Append ``samples`` ``(n, n_channels)`` with LSL ``timestamps`` ``(n,)``, seconds."""
        n = samples.shape[0]
        if n == 0:
            return
        if n > self.capacity:
            samples, timestamps = samples[-self.capacity :], timestamps[-self.capacity :]
            self.count += n - self.capacity
            n = self.capacity
        pos = self.count % self.capacity
        first = min(n, self.capacity - pos)
        with self.lock:
            for offset in (0, self.capacity):
                self._data[offset + pos : offset + pos + first] = samples[:first]
                self._times[offset + pos : offset + pos + first] = timestamps[:first]
                if first < n:
                    self._data[offset : offset + n - first] = samples[first:]
                    self._times[offset : offset + n - first] = timestamps[first:]
            self.count += n

    def reset(self) -> None:
        """Forget the contents (after a gap in the stream); absolute indices keep counting."""
        with self.lock:
            self.start_index = self.count

    @property
    def available(self) -> int:
        """Samples held since the last reset, at most ``capacity``."""
        return min(self.count - self.start_index, self.capacity)

    def window(self, end: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``end - length .. end - 1`` (absolute indices) as views: data ``(length, n_channels)``
        and timestamps ``(length,)``. Raises ``IndexError`` if they are not all held."""
        oldest = max(self.count - self.capacity, self.start_index)
        if length > self.capacity or end > self.count or end - length < oldest:
            raise IndexError(f"samples {end - length}..{end - 1} not in buffer (holds {oldest}..{self.count - 1})")
        start = (end - length) % self.capacity
        return self._data[start : start + length], self._times[start : start + length]

    def latest(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """The newest ``length`` samples (views), as :meth:`window`."""
        return self.window(self.count, length)

    def nearest_index(self, t: float, tolerance: float) -> int | None:
        """Absolute index of the held sample stamped nearest LSL time ``t`` (seconds); None if no held
        sample is within ``tolerance`` s of it.

        Stamps need not increase: a sender that stamps chunks on receipt and catches up after a stall
        gives overlapping stamps, where a sorted search lands samples away from the right one.
        """
        n = self.available
        if n == 0:
            return None
        _, times = self.latest(n)
        distance = np.abs(times - t)
        i = int(np.argmin(distance))
        return self.count - n + i if distance[i] <= tolerance else None

    def snapshot(self, length: int, channels: np.ndarray | slice = slice(None),
                 step: int = 1) -> tuple[np.ndarray, float | None]:
        """A copy of the newest ``length`` samples (decimated by ``step``) of ``channels``, taken under
        the lock, for display on another thread: ``(data (n_selected, length // step), LSL time of the
        newest sample or None when empty)``."""
        with self.lock:
            length = min(length, self.available)
            if length == 0:
                return np.empty((0 if isinstance(channels, slice) else len(channels), 0), np.float32), None
            data, times = self.latest(length)
            return np.array(data[::step, channels].T), float(times[-1])
