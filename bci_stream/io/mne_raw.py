"""Anything MNE reads (FIF, EDF, BDF, BrainVision, EEGLAB, GDF, CNT): EEG channels + annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bci_stream.io.integrity import check_edf_complete
from bci_stream.io.recording import Recording, RecordingError


def read_mne(path: str | Path, stim_channel: str | None = None, event_field: str | None = None) -> Recording:
    """Read EEG channels in microvolts and markers from annotations (else from a stim channel).

    Annotation descriptions become marker texts (``BAD``/``EDGE`` segment marks are skipped); with no
    annotations, events found on ``stim_channel`` (or MNE's default stim channels) become markers whose
    text is the event code. ``event_field`` (EEGLAB ``.set`` only): markers are ``"<type>/<field>"``
    from the file's own event table, e.g. ``square/1`` for ``event_field="position"`` (MNE's
    annotations keep the event type only); events without that field keep their type (``rt``).
    """
    import mne

    path = Path(path)
    if event_field is not None and path.suffix.lower() != ".set":
        raise RecordingError(f"{path.name}: event_field= applies to EEGLAB .set files only")
    if path.suffix.lower() in (".edf", ".bdf"):
        check_edf_complete(path)  # MNE reads a cut file "inferring from the file size", warning only
    try:
        raw = mne.io.read_raw(str(path), preload=True, verbose="error")
    except Exception as err:
        raise RecordingError(f"{path}: MNE cannot read it ({type(err).__name__}: {err})") from err
    events = _eeglab_events(path, event_field, raw.n_times) if event_field else None
    return recording_from_raw(raw, str(path), stim_channel=stim_channel, events=events)


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
        events = []
        for onset, desc in zip(raw.annotations.onset, raw.annotations.description):
            if desc.upper().startswith(("BAD", "EDGE")):  # MNE's bad-segment marks, not stimuli
                continue
            sample = int(round((onset - raw.first_time) * raw.info["sfreq"])) if raw.annotations.orig_time is not None \
                else int(round(onset * raw.info["sfreq"]))
            if 0 <= sample < raw.n_times:
                events.append((sample, _strip_brainvision_type(str(desc))))
    if not events:
        try:
            found = mne.find_events(raw, stim_channel=stim_channel, verbose="error")
        except ValueError:
            found = np.zeros((0, 3), int)
        events = [(int(s - raw.first_samp), str(code)) for s, _, code in found]
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
