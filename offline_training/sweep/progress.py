"""The sweep's progress on the terminal: trials running / done / stopped early / failed, best so far.

:class:`SweepProgress` is plain logic (tested without running Ray); :class:`ProgressCallback` feeds it from
Ray Tune's trial events.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import TextIO

import numpy as np
from ray.tune import Callback

from offline_training.sweep.space import describe


class SweepProgress:
    """Trials running / done / stopped early / failed and the best validation result so far.

    On a terminal one status line is redrawn in place (at most every ``min_interval`` s) and events are
    printed above it; in a log file (``stream`` not a TTY) each event is one line ending with the counts,
    with no carriage returns.
    """

    def __init__(self, total: int, metric: str, mode: str, stream: TextIO | None = None, tty: bool | None = None,
                 min_interval: float = 0.5):
        self.total, self.metric, self.mode = total, metric, mode
        self._stream = stream
        self.tty = tty
        self.min_interval = min_interval
        self.running: set[str] = set()
        self.ended: dict[str, str] = {}
        self.best: tuple[float, str] | None = None
        self._last_draw = 0.0
        self.ended_this_session = 0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def _is_tty(self) -> bool:
        return self.stream.isatty() if self.tty is None else self.tty

    def counts(self) -> str:
        n = {s: sum(v == s for v in self.ended.values()) for s in ("done", "stopped early", "failed")}
        pending = max(0, self.total - len(self.ended) - len(self.running))
        best = "" if self.best is None else f" | best {self.metric} {self.best[0]:.4f} ({self.best[1]})"
        return (f"{len(self.running)} running, {n['done']} done, {n['stopped early']} stopped early, "
                f"{n['failed']} failed, {pending} pending{best}")

    def _event(self, text: str) -> None:
        if self._is_tty():
            self.stream.write(f"\r\x1b[K{text}\n[sweep] {self.counts()}")
        else:
            self.stream.write(f"{text} | {self.counts()}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line of its own (above the status line on a terminal)."""
        self.stream.write(f"\r\x1b[K{text}\n" if self._is_tty() else f"{text}\n")
        self.stream.flush()

    def _redraw(self) -> None:
        now = time.monotonic()
        if self._is_tty() and now - self._last_draw >= self.min_interval:
            self._last_draw = now
            self.stream.write(f"\r\x1b[K[sweep] {self.counts()}")
            self.stream.flush()

    def started(self, trial_id: str, params: dict) -> None:
        self.running.add(trial_id)
        self.ended.pop(trial_id, None)
        self._event(f"trial {trial_id} started: subject {params.get('subject')}, seed {params.get('seed')}, "
                    f"{describe(params)}")

    def result(self, trial_id: str, result: dict) -> None:
        value = result.get(self.metric)
        if isinstance(value, int | float) and np.isfinite(value):
            better = self.best is None or (value < self.best[0] if self.mode == "min" else value > self.best[0])
            if better:
                self.best = (float(value), f"trial {trial_id}, epoch {result.get('epoch')}")
        self._redraw()

    def finished(self, trial_id: str, status: str, last: dict) -> None:
        self.running.discard(trial_id)
        self.ended[trial_id] = status
        self.ended_this_session += 1
        value = last.get(self.metric)
        what = f"{self.metric} {value:.4f}" if isinstance(value, int | float) else "no result"
        if status == "done" and "test_top1" in last:
            what += f", test top-1 {last['test_top1']:.3f}"
        self._event(f"trial {trial_id} {status} after {last.get('epoch', 0)} epoch(s): {what}")

    def close(self) -> None:
        if self._is_tty():
            self.stream.write(f"\r\x1b[K[sweep] {self.counts()}\n")
            self.stream.flush()


ACTIVE: dict = {"progress": None, "stop_after": None}  # this driver's display; Tune pickles callbacks


class ProgressCallback(Callback):
    """Forwards Tune's trial events to this process's :class:`SweepProgress`. It holds no state, since
    Tune pickles it into ``tuner.pkl`` and brings a copy back on restore."""

    def on_trial_start(self, iteration, trials, trial, **info):
        if ACTIVE["progress"]:
            ACTIVE["progress"].started(trial.trial_id, trial.config)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if ACTIVE["progress"]:
            ACTIVE["progress"].result(trial.trial_id, result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        self._ended(trial, "done" if last.get("final") else "stopped early", last)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._ended(trial, "failed", trial.last_result or {})

    def _ended(self, trial, status: str, last: dict) -> None:
        progress = ACTIVE["progress"]
        if progress is None:
            return
        progress.finished(trial.trial_id, status, last)
        stop_after = ACTIVE["stop_after"]
        if stop_after is not None and progress.ended_this_session == stop_after:
            progress.note(f"--stop-after {stop_after}: ending this session (continue with --resume)")
            # Tune's own interruption path (the handler it installs for SIGINT/SIGUSR1): the
            # experiment state is saved and ``Tuner.restore`` continues from it.
            os.kill(os.getpid(), signal.SIGUSR1)
