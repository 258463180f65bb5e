"""Recording LSL streams to XDF with the real LabRecorder, beside a live decoder.

The recording itself is LabRecorder's: :class:`labrecorder.Recording` (the ``labrecorder`` package,
the LSL project's LabRecorder with Python bindings) opens an inlet per stream, writes every chunk,
the clock offsets (one every 5 s) and the footers into XDF. It runs in a **child process**
(``python -m bci_stream.recording.child``), for three reasons:

- LabRecorder prints its progress on stdout; in a child that goes to ``<file>.log``, not into the
  decoder's output;
- its threads (one per stream, plus the clock-offset thread) never compete with the decoding loop
  for the GIL;
- a recorder that dies (killed, crashed, disk full) is a process that ended: the decoder notices,
  reports it once and goes on decoding, as it does when the JSONL log fails.

The package also ships ``bin/LabRecorderCLI``; the 1.0.0rc0 wheel's binary crashes in the dynamic
loader on Debian 12 (segfault before ``main``), so the child uses the bindings, which are the same
``recording`` class.

:class:`Recorder` is the object a session holds: ``start()``, ``status()``, ``stop()`` and
``push(prediction)`` (the hook a decision sink has; it checks the recorder about once a second).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

READY_SUFFIX = ".ready"  # the child writes <file>.ready once LabRecorder has opened every stream


class RecordError(RuntimeError):
    """The recorder could not start (no labrecorder package, a stream not found, an unwritable folder)."""


@dataclass(frozen=True)
class RecordConfig:
    """How recordings are made.

    Attributes
    ----------
    min_free_mb : stop the recording (and report it) when the disk has less free space than this, so
        that a full disk never cuts a chunk in half; decoding goes on.
    check_every : seconds between checks of the recorder from :meth:`Recorder.push`.
    start_timeout : seconds to wait for LabRecorder to open every stream.
    """

    min_free_mb: float = 100.0
    check_every: float = 1.0
    start_timeout: float = 15.0


@dataclass(frozen=True)
class RecordStatus:
    """What the viewer and the log show: the file, its size (bytes), seconds recorded, whether the
    recorder runs, and the error that ended it ("" if none)."""

    path: str
    size: int
    seconds: float
    running: bool
    error: str = ""

    def line(self) -> str:
        state = "recording" if self.running else ("recording FAILED" if self.error else "recorded")
        return f"{state} {self.path} ({self.size / 1e6:.1f} MB, {self.seconds:.0f} s)" + \
            (f": {self.error}" if self.error else "")


def query_for(source_id: str) -> str:
    """liblsl's XPath predicate matching one stream by source id (quoted: an id may hold an apostrophe)."""
    quote = '"' if "'" in source_id else "'"
    if quote in source_id:
        raise RecordError(f"source id {source_id!r} holds both quote characters: liblsl cannot query it")
    return f"source_id={quote}{source_id}{quote}"


def recording_path(directory: str | Path, prefix: str = "session") -> Path:
    """A new file ``DIR/<prefix>-YYYYmmdd-HHMMSS.xdf`` (a ``-N`` suffix if one exists already)."""
    directory = Path(directory)
    stem = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = directory / f"{stem}.xdf", 1
    while path.exists():
        path, n = directory / f"{stem}-{n}.xdf", n + 1
    return path


class Recorder:
    """LabRecorder writing the streams of ``source_ids`` into ``path`` (XDF), in a child process.

    ``on_error(message)`` is called once (from :meth:`push` or :meth:`check`) when the recording
    ends on its own: the recorder process died, or the disk is nearly full (the recorder is then
    stopped cleanly, so the file keeps its footers).
    """

    def __init__(self, path: str | Path, source_ids: list[str], config: RecordConfig = RecordConfig(),
                 on_error: Callable[[str], None] | None = None):
        if not source_ids:
            raise RecordError("nothing to record: no stream given")
        self.path = Path(path)
        self.source_ids = list(source_ids)
        self.config = config
        self.on_error = on_error
        self.error = ""
        self._proc: subprocess.Popen | None = None
        self._t_start = 0.0
        self._t_end: float | None = None
        self._next_check = 0.0
        self._monitor: threading.Thread | None = None
        self._check_lock = threading.Lock()  # check() runs on the monitor thread and on callers'
        self._done = threading.Event()
        self.on_status: Callable[[RecordStatus], None] | None = None  # every check_every s while recording

    @property
    def log_path(self) -> Path:
        return self.path.with_suffix(".log")

    def start(self) -> Recorder:
        """Start LabRecorder and wait until it has opened every stream (raises :class:`RecordError`)."""
        try:
            import labrecorder  # noqa: F401  (only to name the missing package here, not in the child)
        except ImportError as err:
            raise RecordError("recording needs the labrecorder package: pip install 'bci-stream[record]'") from err
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            logfile = open(self.log_path, "wb")  # noqa: SIM115 (the child owns it)
        except OSError as err:
            raise RecordError(f"cannot write recordings to {self.path.parent}: {err.strerror or err}; "
                              "pass --record a writable folder") from err
        ready = Path(str(self.path) + READY_SUFFIX)
        ready.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "bci_stream.recording.child", str(self.path), str(self.config.start_timeout),
               *[query_for(s) for s in self.source_ids]]
        # the child inherits LSLAPICFG (the session's discovery) and PYTHONPATH
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=logfile, stderr=subprocess.STDOUT,
                                      env=dict(os.environ))
        logfile.close()
        deadline = time.monotonic() + self.config.start_timeout + 10
        while not ready.exists():
            if self._proc.poll() is not None:
                raise RecordError(f"the recorder did not start: {self._last_log_line()}")
            if time.monotonic() > deadline:
                self._kill()
                raise RecordError(f"the recorder did not open its streams within {self.config.start_timeout:g} s "
                                  f"({self._last_log_line()})")
            time.sleep(0.02)
        ready.unlink(missing_ok=True)
        self._t_start = time.monotonic()
        log.info("recording %d stream(s) to %s", len(self.source_ids), self.path)
        self._monitor = threading.Thread(target=self._watch, name="recorder-watch", daemon=True)
        self._monitor.start()
        return self

    def _watch(self) -> None:
        """Check the recorder and publish its status every ``check_every`` s, off the decoding loop."""
        while not self._done.wait(self.config.check_every):
            self.check()
            if self.on_status is not None:
                self.on_status(self.status())
            if not self.running:
                return

    # --- health ---------------------------------------------------------------------------------
    def push(self, prediction=None) -> None:
        """The decision hook: checks the recorder about every ``check_every`` s (never blocks)."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.config.check_every
            self.check()

    def check(self) -> str:
        """Why the recording ended on its own ("" while it runs or after a normal :meth:`stop`);
        reported once through ``on_error``."""
        with self._check_lock:
            return self._check()

    def _check(self) -> str:
        if self.error or self._proc is None or self._t_end is not None:
            return self.error
        code = self._proc.poll()
        if code is not None:
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            self._fail(f"the recorder process ended ({how}; {self._last_log_line()}); the recording {self.path} "
                       f"stops at {self._seconds():.0f} s, decoding goes on")
        else:
            free_mb = shutil.disk_usage(self.path.parent).free / 1e6
            if free_mb < self.config.min_free_mb:
                seconds = self._seconds()
                self._fail(f"disk nearly full ({free_mb:.0f} MB free on {self.path.parent}, the limit is "
                           f"{self.config.min_free_mb:g} MB): recording {self.path} stopped at {seconds:.0f} s, "
                           "decoding goes on")
                self._stop_child()  # cleanly: LabRecorder writes the footers
        return self.error

    def _fail(self, message: str) -> None:
        self.error = message
        self._t_end = time.monotonic()
        log.warning("%s", message)
        if self.on_error is not None:
            self.on_error(message)

    def status(self) -> RecordStatus:
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        return RecordStatus(str(self.path), size, self._seconds(), self.running, self.error)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._t_end is None and self._proc.poll() is None

    def _seconds(self) -> float:
        if not self._t_start:
            return 0.0
        return (self._t_end or time.monotonic()) - self._t_start

    # --- the end ----------------------------------------------------------------------------------
    def stop(self) -> RecordStatus:
        """End the recording: LabRecorder writes the last chunks, clock offsets and footers."""
        if self._proc is not None and self._t_end is None:
            self.check()
        if self._t_end is None:
            self._t_end = time.monotonic()
        self._done.set()
        self._stop_child()
        status = self.status()
        if self.on_status is not None:
            self.on_status(status)
        return status

    def _stop_child(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.stdin.close()  # the child's cue: stop, write the footers, exit
        except OSError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            log.warning("the recorder did not stop within 20 s; killing it (%s may lack its footers)", self.path)
            self._kill()

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)

    def _last_log_line(self) -> str:
        try:
            lines = [ln.strip() for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "no recorder log"
        return lines[-1] if lines else "the recorder printed nothing"


def stream_query_id(info) -> str:
    """The source id to record a ``pylsl.StreamInfo`` by (refused without one: a name is not unique)."""
    if not info.source_id():
        raise RecordError(f"stream {info.name()!r} has no source id: LabRecorder could not tell it from another "
                          "of that name; give the device a source id")
    return info.source_id()


def attach_recorder(session, directory: str | Path, config: RecordConfig = RecordConfig(),
                    prefix: str = "session") -> Recorder:
    """Record a started :class:`~bci_stream.live.session.LiveSession`'s EEG stream, its marker stream and its
    predictions outlet into a new XDF file in ``directory``. The session's state gets the status
    (``recording``) every ``check_every`` s; a failure is shown, logged as ``recording_failed`` in the
    JSONL log, and decoding goes on."""
    ids = [stream_query_id(session.source.info)]
    if session.markers is not None:
        ids.append(stream_query_id(session.markers.info))
    if session.outlet is not None:
        ids.append(session.outlet.source_id)

    def failed(message: str) -> None:
        session.state.update(message=message[:200])
        if session.jsonl:
            session.jsonl.event("recording_failed", message=message)

    recorder = Recorder(recording_path(directory, prefix), ids, config, on_error=failed)
    recorder.on_status = lambda st: session.state.update(recording=dataclasses.asdict(st))
    recorder.start()
    session.state.update(recording=dataclasses.asdict(recorder.status()))
    if session.jsonl:
        session.jsonl.event("recording_started", path=str(recorder.path), streams=ids)
    return recorder
