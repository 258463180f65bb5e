"""The recorder process :class:`bci_stream.recording.labrecorder.Recorder` starts: LabRecorder on some LSL streams.

``python -m bci_stream.recording.child FILE TIMEOUT QUERY [QUERY ...]``: resolves each liblsl XPath
``QUERY`` (e.g. ``source_id='eeg-1'``), records them all into ``FILE`` with
:class:`labrecorder.Recording` (clock offsets on), writes ``FILE.ready`` once recording, and stops
(writing the footers) when its stdin closes or on SIGTERM. Exit 2: a stream was not found.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from bci_stream.recording.labrecorder import READY_SUFFIX

LINGER_S = 0.7


def main(argv: list[str]) -> int:
    path, timeout, queries = Path(argv[0]), float(argv[1]), argv[2:]
    import labrecorder
    import pylsl

    streams = []
    for query in queries:
        found = pylsl.resolve_bypred(query, 1, timeout)
        if not found:
            print(f"bci-stream recorder: no LSL stream matches {query} within {timeout:g} s", flush=True)
            return 2
        streams.append(found[0])
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.buffer.read(), done.set()), daemon=True).start()
    recording = labrecorder.Recording(str(path), streams, collect_offsets=True)
    _wait_for_headers(path, len(streams), timeout)
    names = ", ".join(f"{s.name()!r}" for s in streams)
    print(f"bci-stream recorder: recording {names} to {path}", flush=True)
    Path(str(path) + READY_SUFFIX).touch()
    done.wait()
    # LabRecorder pulls each inlet every 500 ms and stop() ends the pulls at once: wait one round more
    # so that what was sent before the cue is in the file
    time.sleep(LINGER_S)
    recording.stop()
    del recording  # joins LabRecorder's threads: the last chunks, clock offsets and footers are written
    print(f"bci-stream recorder: closed {path}", flush=True)
    return 0


def _wait_for_headers(path: Path, n: int, timeout: float) -> None:
    """Until LabRecorder has written the header of all ``n`` streams (their inlets are open: samples
    from now on are in the file), or ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if path.read_bytes().count(b"<info>") >= n:
                return
        except OSError:
            pass
        time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
