"""The JSONL session log: decisions and session events, written by a background thread."""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pylsl

from bci_stream.live.prediction import Prediction

log = logging.getLogger(__name__)


class LogOpenError(RuntimeError):
    """The JSONL session log cannot be opened for writing (a folder, no permission, ...)."""


def finite_json(record: dict) -> str:
    """``record`` as one JSON line; non-finite floats (never valid JSON) become ``null``.

    ``json.dumps`` writes NaN as a bare ``NaN`` that strict readers refuse; the common case (all
    finite) pays one ``allow_nan=False`` attempt only.
    """
    try:
        return json.dumps(record, allow_nan=False)
    except ValueError:
        return json.dumps(_nulls_for_non_finite(record), allow_nan=False)


def _nulls_for_non_finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _nulls_for_non_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nulls_for_non_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _nulls_for_non_finite(value.item())
    return value


class JsonlLog:
    """Append-only JSON-lines session log written by a background thread.

    The hot path only appends to a bounded queue (``max_queue`` records; when the writer falls
    behind, the oldest are dropped and counted, so memory stays flat). The writer writes whole lines
    at least every ``flush_every`` s, so a crash loses at most that much. A write that fails (disk
    full, I/O error) is cut back to the last whole line, reported once through ``on_error(message)``
    and retried every ``retry_every`` s; decoding never notices and :meth:`close` never raises.
    Events (stream lost/restored, withheld windows) share the file. The file is opened at once (a
    path that cannot be written is refused before decoding starts); one this log created and
    never wrote a record to is removed at :meth:`close`. ``clock`` stamps the events (LSL seconds).

    Attributes (read any time): ``written`` records on disk, ``dropped`` records lost (queue full
    or given up at close), ``error`` the current write error ("" if none), ``failed`` whether
    records were lost. ``on_error`` gets a one-line message when writing fails, "" when it recovers
    with nothing lost, and the final :meth:`summary_line` at close if records were lost.
    """

    def __init__(self, path: str | Path, class_names: list[str], flush_every: float = 0.5,
                 on_error: Callable[[str], None] | None = None, max_queue: int = 4096, retry_every: float = 1.0,
                 clock: Callable[[], float] = pylsl.local_clock):
        self.path = Path(path)
        self.clock = clock  # LSL seconds: the events' "t" (the session's clock)
        self.class_names = class_names
        self.on_error = on_error
        from bci_stream.io.safe_write import WriteTargetError, check_writable_target

        try:  # appended to in place (never renamed): a FIFO would block the open, a folder cannot be opened
            check_writable_target(self.path, create=True, append=True)
        except WriteTargetError as err:
            raise LogOpenError(f"cannot write the session log: {err}") from None
        try:
            self._created = not self.path.exists()  # ours to remove at close if it never got a record
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as err:
            raise LogOpenError(f"cannot write the session log {self.path}: {err.strerror or err}; "
                               "pass --log a writable file path") from err
        self._good_size = _size(self._fd)  # the file ends in a whole line here
        self._queue: deque = deque(maxlen=max_queue)
        self._pending: deque[bytes] = deque(maxlen=max_queue)  # encoded lines not yet on disk
        self._flush_every, self._retry_every = flush_every, retry_every
        self.written = 0
        self._dropped_queue = 0  # counted on the decoding thread
        self._dropped_writer = 0  # counted on the writer thread
        self.error = ""
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="jsonl-log", daemon=True)
        self._thread.start()

    # --- decoding side (never blocks, never raises) ---------------------------------------------
    def push(self, p: Prediction) -> None:
        """Log a decision (a sink of the live loop: :class:`bci_stream.live.interfaces.Sink`)."""
        self._put(p)

    def event(self, kind: str, **fields) -> None:
        """Log a session event ``{"event": kind, "t": clock(), **fields}``."""
        self._put({"event": kind, "t": self.clock(), **fields})

    def _put(self, item) -> None:
        if len(self._queue) == self._queue.maxlen:
            self._dropped_queue += 1  # the deque drops its oldest record on append
        self._queue.append(item)

    @property
    def dropped(self) -> int:
        """Records lost: pushed out of a full queue, or not written when the log closed."""
        return self._dropped_queue + self._dropped_writer

    # --- writer side ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self._flush_every):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        """Encode what is queued and write it (or keep it for the next try while the disk fails)."""
        while self._queue:
            item = self._queue.popleft()
            record = item.to_record(self.class_names) if isinstance(item, Prediction) else item
            if len(self._pending) == self._pending.maxlen:
                self._dropped_writer += 1
            self._pending.append((finite_json(record) + "\n").encode())
        if not self._pending or (self.error and time.monotonic() < self._retry_at):
            return
        header = b""
        if self.error and self.dropped:  # writable again after a failure: say what is missing
            header = (finite_json({"event": "log_records_dropped", "t": self.clock(), "dropped": self.dropped,
                                   "error": self.error}) + "\n").encode()
        try:
            self._write_all(header + b"".join(self._pending))
        except OSError as err:
            self._fail(err)
            return
        self.written += len(self._pending)
        self._pending.clear()
        if self.error:
            log.warning("session log %s writable again (%d records lost)", self.path, self.dropped)
            self.error = ""
            self._report(self.summary_line() if self.dropped else "")  # "": nothing lost, the problem is over

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            if n == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[n:]
        self._good_size += len(data)

    def _fail(self, err: OSError) -> None:
        """Cut the file back to its last whole line, remember the error, report it once per episode."""
        try:
            os.ftruncate(self._fd, self._good_size)
        except OSError:
            pass  # /dev/full and pipes cannot be truncated; nothing was kept there anyway
        first = not self.error
        self.error = str(err.strerror or err)
        self._retry_at = time.monotonic() + self._retry_every
        if first:
            log.error("cannot write the session log %s: %s; decoding goes on, records are kept (up to %d) "
                      "and retried", self.path, self.error, self._pending.maxlen)
            self._report(self.summary_line())

    @property
    def failed(self) -> bool:
        """True when records were lost (or the log cannot be written now)."""
        return bool(self.error) or self.dropped > 0

    def _report(self, message: str) -> None:
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:  # noqa: BLE001 - a broken callback must not stop the log
                log.exception("log error callback failed")

    def summary_line(self) -> str:
        """One line on the log's health, e.g. ``"log /x.jsonl: No space left on device; 0 records written,
        120 lost"``."""
        state = self.error or ("writable again" if self.dropped else "ok")
        return f"log {self.path}: {state}; {self.written} records written, {self.dropped} lost"

    def close(self) -> None:
        """Write what is queued (one last try), stop the writer and close the file. Never raises."""
        if self._closed:
            return
        self._closed = True
        self._retry_at = 0.0
        self._stop.set()
        self._thread.join(timeout=5)
        if self._pending:  # the last try failed too: those records are lost
            self._dropped_writer += len(self._pending)
            self._pending.clear()
        try:
            os.close(self._fd)
        except OSError as err:
            self.error = str(err.strerror or err)
        if self._created and self.written == 0 and not self.failed and self._good_size == 0:
            try:  # opened early to refuse a bad path at once; a session stopped before its first record
                self.path.unlink()  # (Ctrl-C while waiting for the stream) leaves no empty file behind
            except OSError:
                pass
        if self.failed:
            self._report(self.summary_line())


def _size(fd: int) -> int:
    try:
        return os.fstat(fd).st_size
    except OSError:
        return 0
