"""Which reader opens a recording: the file-name suffix table, in its own module (as MNE keeps
``mne/io/_read_raw.py``) so that the readers can import :class:`Recording` without a circle."""

from __future__ import annotations

from pathlib import Path

from bci_stream.io.recording import Recording, RecordingError

MNE_SUFFIXES = {".fif", ".edf", ".bdf", ".vhdr", ".set", ".gdf", ".cnt"}


def read_recording(path: str | Path, **kwargs) -> Recording:
    """Read an EEG recording with markers; the format follows the file name.

    ``.xdf`` (LabRecorder; pyxdf), ``.fif .edf .bdf .vhdr .set .gdf .cnt`` (MNE), ``.pth``
    (EEG-ImageNet, trials laid end to end). Keyword arguments go to the format's reader.
    """
    path = Path(path)
    if not path.exists():
        raise RecordingError(f"no recording at {path}")
    suffix = path.suffix.lower()
    if suffix == ".xdf" or path.name.lower().endswith(".xdfz"):
        from bci_stream.io.xdf import read_xdf

        return read_xdf(path, **kwargs)
    if suffix in MNE_SUFFIXES:
        from bci_stream.io.mne_raw import read_mne

        return read_mne(path, **kwargs)
    if suffix == ".pth":
        from bci_stream.io.eegimagenet import read_eegimagenet_continuous

        return read_eegimagenet_continuous(path, **kwargs)
    raise RecordingError(
        f"{path.name}: unknown recording format {suffix!r}; expected .xdf, .pth or one of {sorted(MNE_SUFFIXES)}"
    )
