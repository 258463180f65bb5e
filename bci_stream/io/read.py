"""Which reader opens a recording: the file-name suffix table, in its own module (as MNE keeps
``mne/io/_read_raw.py``) so that the readers can import :class:`Recording` without a circle."""

from __future__ import annotations

import inspect
from pathlib import Path

from bci_stream.io.recording import Recording, RecordingError

MNE_SUFFIXES = {".fif", ".edf", ".bdf", ".vhdr", ".set", ".gdf", ".cnt"}


def reader_for(path: str | Path):
    """``(format name, reader function)`` for a file name."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".xdf" or path.name.lower().endswith(".xdfz"):
        from bci_stream.io.xdf import read_xdf

        return "XDF", read_xdf
    if suffix in MNE_SUFFIXES or path.name.lower().endswith(".fif.gz"):
        from bci_stream.io.mne_raw import read_mne

        return "MNE", read_mne
    if suffix == ".csv":
        from bci_stream.io.csv_table import read_csv

        return "CSV", read_csv
    if suffix == ".pth":
        from bci_stream.io.eegimagenet import read_eegimagenet_continuous

        return "ImageNet-EEG", read_eegimagenet_continuous
    raise RecordingError(
        f"{path.name}: unknown recording format {suffix!r}; expected .xdf, .csv, .pth or one of {sorted(MNE_SUFFIXES)}"
    )


def reader_options(path: str | Path) -> set[str]:
    """The keyword options the reader of ``path`` accepts."""
    _, reader = reader_for(path)
    return {name for name in inspect.signature(reader).parameters if name != "path"}


def read_recording(path: str | Path, **kwargs) -> Recording:
    """Read an EEG recording with markers; the format follows the file name.

    ``.xdf`` (LabRecorder; pyxdf), ``.fif .edf .bdf .vhdr .set .gdf .cnt`` (MNE), ``.csv``
    (timestamped CSV, e.g. Muse / eeg-notebooks), ``.pth`` (ImageNet-EEG, trials laid end to end).
    Keyword arguments go to the format's reader; ``None`` values are left out, and an option that
    reader does not take is refused naming those it does.
    """
    path = Path(path)
    if not path.exists():
        raise RecordingError(f"no recording at {path}")
    if path.is_dir():
        raise RecordingError(f"{path} is a folder; name a recording file in it")
    kind, reader = reader_for(path)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    accepted = reader_options(path)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise RecordingError(f"{path.name}: {unknown[0]}= does not apply to {kind} files (their options: "
                             f"{', '.join(sorted(accepted))})")
    return reader(path, **kwargs)
