"""Anything MNE reads (FIF, EDF, BDF, BrainVision, EEGLAB, GDF, CNT): EEG channels + annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bci_stream.io.integrity import check_edf_complete
from bci_stream.io.recording import Recording, RecordingError


def read_mne(path: str | Path, stim_channel: str | None = None) -> Recording:
    """Read EEG channels in microvolts and markers from annotations (else from a stim channel).

    Annotation descriptions become marker texts (``BAD``/``EDGE`` segment marks are skipped); with no annotations, events found on
    ``stim_channel`` (or MNE's default stim channels) become markers whose text is the event code.
    """
    import mne

    if Path(path).suffix.lower() in (".edf", ".bdf"):
        check_edf_complete(path)  # MNE reads a cut file "inferring from the file size", warning only
    try:
        raw = mne.io.read_raw(str(path), preload=True, verbose="error")
    except Exception as err:
        raise RecordingError(f"{path}: MNE cannot read it ({type(err).__name__}: {err})") from err
    picks = mne.pick_types(raw.info, eeg=True, exclude=[])
    if len(picks) == 0:
        raise RecordingError(f"{path}: no EEG channels (found types {sorted(set(raw.get_channel_types()))})")
    data = raw.get_data(picks=picks, units="uV")
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
                     ch_names=[raw.ch_names[i] for i in picks], events=events, unit="uV", source=str(path))


def _strip_brainvision_type(description: str) -> str:
    """BrainVision markers read as ``"Comment/<text>"`` or ``"Stimulus/S  1"``: keep the text."""
    for prefix in ("Comment/", "Stimulus/", "Response/"):
        if description.startswith(prefix):
            return description[len(prefix) :].strip()
    return description
