"""A BIDS dataset (EEG) read with mne-bids: every matching recording, epoched at its events.

``bids:ROOT[,task=T,subject=S,session=X,run=R,tmin=,tmax=,mapping=|classes=auto]``. Markers are the
``trial_type`` column of each ``*_events.tsv`` (MNE annotations); subjects, sessions and runs come from
the BIDS entities of each file, so by-run, by-session and leave-subject-out splits work.
"""

from __future__ import annotations

from pathlib import Path

from bci_stream.contract.trials import Trials
from bci_stream.io import RecordingError
from bci_stream.io.mne_raw import recording_from_raw
from offline_training.datasets.recordings import Preprocess, class_set_for, epoch_recordings

EXTENSIONS = [".vhdr", ".edf", ".bdf", ".set", ".fif", ".eeg"]


def load_bids(root: str, task: str | None = None, subject: str | None = None, session: str | None = None,
              run: str | None = None, tmin: str = "0", tmax: str = "0.5", mapping: str | None = None,
              classes: str | None = None, markers: str | None = None,
              preprocess: Preprocess | None = None) -> Trials:
    """Trials of every EEG recording under ``root`` that matches the given entities."""
    import mne_bids

    if not Path(root, "dataset_description.json").is_file():
        raise RecordingError(f"{root}: not a BIDS dataset (no dataset_description.json)")
    paths = mne_bids.find_matching_paths(root, subjects=subject, sessions=session, tasks=task, runs=run,
                                         datatypes="eeg", suffixes="eeg", extensions=EXTENSIONS)
    paths = [p for p in paths if p.extension != ".eeg"]  # BrainVision data files: read via .vhdr
    if not paths:
        wanted = ", ".join(f"{k}={v}" for k, v in (("task", task), ("subject", subject), ("session", session),
                                                  ("run", run)) if v)
        raise RecordingError(f"{root}: no EEG recording{f' with {wanted}' if wanted else ''} "
                             f"(subjects: {mne_bids.get_entity_vals(root, 'subject')})")
    recordings, ids = [], []
    for bids_path in sorted(paths, key=str):
        try:
            raw = mne_bids.read_raw_bids(bids_path, verbose="error")
            raw.load_data()
        except Exception as err:
            raise RecordingError(f"{bids_path.fpath}: mne-bids cannot read it ({type(err).__name__}: {err})") from err
        rec = recording_from_raw(raw, str(bids_path.fpath))
        recordings.append(preprocess(rec) if preprocess is not None else rec)
        ids.append({key: str(value) for key, value in (("subject", bids_path.subject), ("session", bids_path.session),
                                                       ("run", bids_path.run)) if value is not None})
    class_set = class_set_for(recordings, mapping, classes, markers)
    return epoch_recordings(recordings, ids, class_set, float(tmin), float(tmax), source=f"bids:{root}")
