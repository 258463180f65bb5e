"""A LabRecorder recording (XDF) as a BIDS-EEG dataset, written by mne-bids.

The EEG stream goes to ``sub-<S>/[ses-<X>/]eeg/`` as BrainVision (or EDF) with the ``_events.tsv``
(one row per stimulus marker, ``trial_type`` = the marker text) and ``_channels.tsv`` mne-bids
writes; the decoder's decisions (the predictions stream of a ``live --record`` file) go to
``derivatives/bci-stream/`` as a TSV, their onsets on the EEG's time axis (seconds from its first
sample), so a live session can be re-analysed against its own output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bci_stream.io.recording import RecordingError

FORMATS = ("BrainVision", "EDF")


def export_bids(xdf: str | Path, root: str | Path, subject: str = "01", task: str = "images",
                session: str | None = None, run: int | None = None, fmt: str = "BrainVision",
                line_freq: float = 50.0) -> Path:
    """Write ``xdf`` into the BIDS dataset ``root``; returns the EEG file written.

    Raises :class:`RecordingError` for a format mne-bids cannot write here, or a file without EEG.
    """
    import mne
    import mne_bids
    import pyxdf

    from bci_stream.io.xdf import read_xdf

    if fmt not in FORMATS:
        raise RecordingError(f"BIDS format {fmt!r}; use one of {', '.join(FORMATS)}")
    rec = read_xdf(xdf)
    info = mne.create_info(list(rec.ch_names), rec.sfreq, ch_types="eeg")
    raw = mne.io.RawArray(rec.data.astype(np.float64) * 1e-6, info, verbose="error")  # µV -> V (MNE's unit)
    raw.info["line_freq"] = line_freq
    if rec.events:
        onsets = np.array([s for s, _ in rec.events]) / rec.sfreq
        raw.set_annotations(mne.Annotations(onsets, np.zeros(len(onsets)), [t for _, t in rec.events]))
    path = mne_bids.BIDSPath(subject=subject, session=session, task=task, run=run, datatype="eeg", root=root)
    mne_bids.write_raw_bids(raw, path, format=fmt, allow_preload=True, overwrite=True, verbose="error")

    streams, _ = pyxdf.load_xdf(str(xdf), dejitter_timestamps=True, verbose=False)
    eeg = next(s for s in streams if s["info"]["type"][0].upper() == "EEG" and len(s["time_stamps"]))
    predictions = [s for s in streams if s["info"]["type"][0] == "Predictions" and len(s["time_stamps"])]
    if predictions:
        _write_decisions(predictions[0], float(eeg["time_stamps"][0]), Path(root), path)
    return Path(path.fpath)


def _write_decisions(stream: dict, t0: float, root: Path, eeg_path) -> Path:
    """The predictions stream as ``derivatives/bci-stream/sub-*/eeg/*_desc-decisions_eeg.tsv``."""
    chans = stream["info"]["desc"][0]["channels"][0]["channel"]
    labels = [c["label"][0] for c in chans]
    out_dir = root / "derivatives" / "bci-stream" / Path(eeg_path.directory).relative_to(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{eeg_path.copy().update(suffix=None, extension=None).basename}_desc-decisions_eeg.tsv"
    rows = ["onset\t" + "\t".join(labels)]
    for t, values in zip(stream["time_stamps"], stream["time_series"]):
        rows.append(f"{t - t0:.4f}\t" + "\t".join(f"{v:.6g}" for v in values))
    out.write_text("\n".join(rows) + "\n")
    description = root / "derivatives" / "bci-stream" / "dataset_description.json"
    description.write_text('{"Name": "bci-stream decisions", "BIDSVersion": "1.9.0", "DatasetType": "derivative", '
                           '"GeneratedBy": [{"Name": "bci-stream live"}]}\n')
    return out
