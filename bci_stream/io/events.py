"""Event codes and their names: ``event_id=`` specs and MNE events files (``…-eve.fif``).

An MNE events file is an ``(n, 3)`` int array ``(sample, previous value, code)`` with samples counted
from the start of the acquisition (``raw.first_samp`` included), read with :func:`mne.read_events`.
"""

from __future__ import annotations

from pathlib import Path

from bci_stream.io.recording import RecordingError

EVENT_ID_SYNTAX = "event_id=CODE:NAME;CODE:NAME (e.g. event_id=1:rest;2:13Hz)"


def parse_event_id(text: str | dict | None) -> dict[str, str]:
    """``"1:rest;2:13Hz"`` → ``{"1": "rest", "2": "13Hz"}`` (codes as marker texts).

    ``;`` separates pairs and ``:`` code from name because a data spec already uses ``,`` and ``=``.
    """
    if text is None or isinstance(text, dict):
        return {str(k): str(v) for k, v in (text or {}).items()}
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in str(text).split(";"))):
        code, colon, name = pair.partition(":")
        if not colon or not code.strip() or not name.strip():
            raise RecordingError(f"event_id item {pair!r} is not CODE:NAME; write {EVENT_ID_SYNTAX}")
        if code.strip() in out:
            raise RecordingError(f"event_id gives code {code.strip()} twice")
        out[code.strip()] = name.strip()
    if not out:
        raise RecordingError(f"event_id={text!r} names no event; write {EVENT_ID_SYNTAX}")
    return out


def name_events(events: list[tuple[int, str]], event_id: dict[str, str]) -> list[tuple[int, str]]:
    """Markers renamed by ``event_id``; a code it does not name keeps its code (and so maps to no class
    unless a mapping names it)."""
    return [(s, event_id.get(t, t)) for s, t in events] if event_id else list(events)


def sidecar_events_file(path: str | Path) -> Path | None:
    """The MNE events file next to a recording: ``X_raw.fif``/``X-raw.fif``/``X.fif`` → ``X-eve.fif`` or
    ``X_eve.fif`` (MNE's naming), if one exists."""
    path = Path(path)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    for tail in ("_raw", "-raw"):
        if stem.endswith(tail):
            stem = stem[: -len(tail)]
            break
    for sep in ("-", "_"):
        for ext in ("eve.fif", "eve.fif.gz"):
            candidate = path.with_name(f"{stem}{sep}{ext}")
            if candidate.is_file():
                return candidate
    return None


def read_events_file(path: str | Path, first_samp: int, n_times: int) -> list[tuple[int, str]]:
    """``(sample into the data, code text)`` of an MNE events file; events outside the data are refused."""
    import mne

    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"no events file at {path}")
    try:
        found = mne.read_events(str(path), verbose="error")
    except Exception as err:
        raise RecordingError(f"{path}: not an MNE events file ({type(err).__name__}: {err})") from None
    events = [(int(s) - first_samp, str(int(code))) for s, _, code in found]
    outside = [s for s, _ in events if not 0 <= s < n_times]
    if outside:
        raise RecordingError(f"{path}: {len(outside)} of {len(events)} events fall outside the recording's "
                             f"{n_times} samples (first at {outside[0]}); is it the events file of this recording?")
    return events
