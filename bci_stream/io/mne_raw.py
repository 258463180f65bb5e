"""Anything MNE reads (FIF, EDF, BDF, BrainVision, EEGLAB, GDF, CNT): EEG channels + markers."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from bci_stream.io.events import name_events, parse_event_id, read_events_file, sidecar_events_file
from bci_stream.io.integrity import check_brainvision_complete, check_edf_complete
from bci_stream.io.recording import Recording, RecordingError

log = logging.getLogger(__name__)


EVENT_SOURCES = ("auto", "file", "annotations", "stim", "both")


def read_mne(path: str | Path, stim_channel: str | None = None, event_field: str | None = None,
             events: str | None = None, event_id: str | None = None, events_from: str = "auto") -> Recording:
    """Read EEG channels in microvolts and the markers of a file MNE reads.

    Markers come from one of three sources (``events_from``):

    - ``file``: an MNE events file, ``events=FILE`` or the sidecar ``X-eve.fif`` / ``X_eve.fif`` of
      ``X_raw.fif`` (found automatically); marker texts are the event codes;
    - ``annotations``: annotation descriptions (``BAD``/``EDGE`` segment marks skipped);
    - ``stim``: events on ``stim_channel`` (or MNE's default stim channels); texts are the codes;
    - ``both``: annotations and stim-channel events together;
    - ``auto`` (default): the events file if there is one, else the stim channel when ``stim_channel=``
      is given, else annotations if any, else stim channels.

    Which source was used and how many events it gave is logged; a source that holds events but
    was not used is warned about (naming the ``events_from=`` that would use it). ``event_id``
    (``"1:rest;2:13Hz"``) renames codes. ``event_field`` (EEGLAB ``.set`` only): markers are
    ``"<type>/<field>"`` from the file's own event table (e.g. ``square/1`` for ``position``).
    """
    import mne

    path = Path(path)
    if event_field is not None and path.suffix.lower() != ".set":
        raise RecordingError(f"{path.name}: event_field= applies to EEGLAB .set files only")
    if events_from not in EVENT_SOURCES:
        raise RecordingError(f"events_from={events_from!r}; use one of {', '.join(EVENT_SOURCES)}")
    suffix = path.suffix.lower()
    if suffix in (".edf", ".bdf"):
        check_edf_complete(path)  # MNE reads a cut file "inferring from the file size", warning only
    if suffix == ".vhdr":
        check_brainvision_complete(path)  # MNE reads a cut .eeg as far as it goes, without a word
    try:
        raw = _read_cnt(path) if suffix == ".cnt" else mne.io.read_raw(str(path), preload=True, verbose="error")
    except RecordingError:
        raise
    except Exception as err:
        raise RecordingError(f"{path}: MNE cannot read it ({type(err).__name__}: {err})") from err
    if event_field:
        found = _eeglab_events(path, event_field, raw.n_times)
    else:
        events_file = Path(events) if events else sidecar_events_file(path)
        found = choose_events(raw, str(path), stim_channel, events_file, events_from)
    return recording_from_raw(raw, str(path), events=name_events(found, parse_event_id(event_id)))


def _read_cnt(path: Path):
    """A ``.cnt`` file: Neuroscan (``read_raw_cnt``) or ANT Neuro (``read_raw_ant``, needs ``antio``);
    ``mne.io.read_raw`` refuses to choose between them."""
    import mne

    errors = []
    for name in ("read_raw_cnt", "read_raw_ant"):
        reader = getattr(mne.io, name, None)
        if reader is None:
            continue
        try:
            return reader(str(path), preload=True, verbose="error")
        except Exception as err:
            text = "needs the antio package" if "antio" in str(err) else \
                (f"{type(err).__name__}: {err}".splitlines()[0].rstrip(": ") or type(err).__name__)
            errors.append(f"{name}: {text}")
    raise RecordingError(f"{path}: neither Neuroscan nor ANT Neuro CNT ({'; '.join(errors)[:300]}); "
                         "export it to EDF/FIF, or install antio for ANT files")


def _annotation_events(raw) -> list[tuple[int, str]]:
    events = []
    for onset, desc in zip(raw.annotations.onset, raw.annotations.description):
        if desc.upper().startswith(("BAD", "EDGE")):  # MNE's bad-segment marks, not stimuli
            continue
        sample = int(round((onset - raw.first_time) * raw.info["sfreq"])) if raw.annotations.orig_time is not None \
            else int(round(onset * raw.info["sfreq"]))
        if 0 <= sample < raw.n_times:
            events.append((sample, _strip_brainvision_type(str(desc))))
    return events


def _stim_events(raw, stim_channel: str | None, source: str) -> list[tuple[int, str]]:
    import mne

    if stim_channel is not None and stim_channel not in raw.ch_names:
        raise RecordingError(f"{source}: no channel {stim_channel!r} for stim_channel= (channels: {raw.ch_names[:12]})")
    try:
        found = mne.find_events(raw, stim_channel=stim_channel, verbose="error")
    except ValueError:  # no stim channel at all
        return []
    return [(int(s - raw.first_samp), str(code)) for s, _, code in found]


def choose_events(raw, source: str, stim_channel: str | None = None, events_file: Path | None = None,
                  events_from: str = "auto") -> list[tuple[int, str]]:
    """The markers of ``raw`` from the source ``events_from`` names (see :func:`read_mne`); logs the
    choice and warns about a source with events that was left out."""
    offered = {
        "file": lambda: read_events_file(events_file, raw.first_samp, raw.n_times) if events_file else [],
        "annotations": lambda: _annotation_events(raw),
        "stim": lambda: _stim_events(raw, stim_channel, source),
    }
    counts = {name: get() for name, get in offered.items()}
    if events_from == "auto":
        if events_file:
            used = ["file"]
        elif stim_channel is not None:
            used = ["stim"]
        else:
            used = ["annotations"] if counts["annotations"] else ["stim"]
    elif events_from == "both":
        used = ["annotations", "stim"]
    else:
        used = [events_from]
    if events_from == "file" and not events_file:
        raise RecordingError(f"{source}: events_from=file but no events file (pass events=FILE, or put X-eve.fif "
                             "next to X_raw.fif)")
    events = sorted({e for name in used for e in counts[name]})
    where = {"file": f"events file {events_file.name if events_file else ''}",
             "annotations": "annotations", "stim": f"stim channel {stim_channel or '(default)'}"}
    log.info("%s: %d events from %s", source, len(events), " + ".join(f"{where[n]} ({len(counts[n])})" for n in used))
    left = [n for n in offered if n not in used and counts[n]]
    if left:
        warnings.warn(f"{source}: markers from {' + '.join(where[n] for n in used)} ({len(events)}); not used: "
                      + ", ".join(f"{where[n]} ({len(counts[n])} events; events_from={n})" for n in left)
                      + (" or events_from=both" if set(left + used) == {"annotations", "stim"} else ""), stacklevel=3)
    return events


def recording_from_raw(raw, source: str, stim_channel: str | None = None,
                       events: list[tuple[int, str]] | None = None) -> Recording:
    """A :class:`Recording` of an ``mne.io.Raw`` (preloaded): its EEG channels in µV and its markers
    (``events`` if given, else annotations, else stim-channel events). Shared by every MNE-based reader
    (files and BIDS datasets)."""
    import mne

    picks = mne.pick_types(raw.info, eeg=True, exclude=[])
    if len(picks) == 0:
        raise RecordingError(f"{source}: no EEG channels (found types {sorted(set(raw.get_channel_types()))})")
    data = raw.get_data(picks=picks, units="uV")
    if events is None:
        events = choose_events(raw, source, stim_channel)
    return Recording(data=data.astype(np.float32), sfreq=float(raw.info["sfreq"]),
                     ch_names=[raw.ch_names[i] for i in picks], events=events, unit="uV", source=source)


def _eeglab_events(path: Path, field: str, n_times: int) -> list[tuple[int, str]]:
    """``(sample, "<type>/<field value>")`` from an EEGLAB ``.set``'s ``EEG.event`` table (latencies are
    1-based samples, as MNE reads them)."""
    import scipy.io

    try:
        content = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as err:  # a MATLAB v7.3 (HDF5) file, or a corrupt one
        raise RecordingError(f"{path}: cannot read its event table ({type(err).__name__}: {err})") from err
    eeg = content.get("EEG")
    table = getattr(eeg, "event", None) if eeg is not None else content.get("event")
    if table is None:
        raise RecordingError(f"{path}: no EEG.event table in the .set file")
    table = np.atleast_1d(table)
    fields = set(getattr(table[0], "_fieldnames", [])) if len(table) else set()
    if field not in fields:
        raise RecordingError(f"{path}: events have no field {field!r}; fields: {sorted(fields)}")
    events = []
    for ev in table:
        value = getattr(ev, field, None)
        value = value.item() if isinstance(value, np.ndarray) and value.size == 1 else value
        text = str(ev.type) if value is None or (isinstance(value, np.ndarray) and value.size == 0) \
            else f"{ev.type}/{_plain(value)}"
        sample = int(round(float(ev.latency) - 1))
        if 0 <= sample < n_times:
            events.append((sample, text))
    return events


def _plain(value) -> str:
    """``2.0`` → ``"2"``; anything else as text."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _strip_brainvision_type(description: str) -> str:
    """BrainVision markers read as ``"Comment/<text>"`` or ``"Stimulus/S  1"``: keep the text."""
    for prefix in ("Comment/", "Stimulus/", "Response/"):
        if description.startswith(prefix):
            return description[len(prefix) :].strip()
    return description
