"""Local recordings as MOABB datasets, so MOABB's evaluations run on the files in ``../shared/data/real/``
(or a lab's own copy) with no download.

:class:`LocalSSVEPExo` is MOABB's ``Kalunga2016`` (SSVEP Exo) read from the published layout
``subjectNN/record-[…]_raw.fif`` with each recording's events in its ``record-[…]-eve.fif``: one MOABB
session per recording (the two recording days of each subject), so ``CrossSessionEvaluation`` is
leave-one-session-out, as the project's ``by-session`` protocol names it.
"""

from __future__ import annotations

from pathlib import Path

from moabb.datasets.base import BaseDataset

#: SSVEP Exo's event codes (checked from the spectra: the power peaks at the named frequency).
SSVEP_EXO_EVENTS = {"13": 2, "17": 4, "21": 3, "rest": 1}


class LocalSSVEPExo(BaseDataset):
    """SSVEP Exo (Kalunga et al. 2016; MOABB ``Kalunga2016``) from a local folder.

    Parameters
    ----------
    root : the ``ssvep_exo`` folder (``subject01`` … with ``record-[…]_raw.fif`` and ``-eve.fif`` files).
    subjects : subject numbers to use (default: every ``subjectNN`` folder found).
    """

    def __init__(self, root: str | Path, subjects: list[int] | None = None):
        self.root = Path(root)
        found = sorted(int(p.name.removeprefix("subject")) for p in self.root.glob("subject[0-9]*") if p.is_dir())
        if not found:
            raise FileNotFoundError(f"no subjectNN folders in {self.root}; point LocalSSVEPExo at the ssvep_exo folder")
        super().__init__(subjects=subjects or found, sessions_per_subject=2, events=dict(SSVEP_EXO_EVENTS),
                         code="LocalSSVEPExo", interval=[2, 4], paradigm="ssvep", doi="10.1016/j.neucom.2016.01.007")

    def _get_single_subject_data(self, subject: int) -> dict:
        """``{session: {"0": raw}}``, one session per recording, events as annotations."""
        import mne

        names = {code: name for name, code in SSVEP_EXO_EVENTS.items()}
        out = {}
        for i, path in enumerate(self.data_path(subject)):
            raw = mne.io.read_raw_fif(path, preload=True, verbose="ERROR")
            events = mne.read_events(path.with_name(path.name.replace("_raw.fif", "-eve.fif")), verbose="ERROR")
            raw.set_annotations(mne.annotations_from_events(events, raw.info["sfreq"], event_desc=names,
                                                            first_samp=raw.first_samp, verbose="ERROR"))
            out[str(i)] = {"0": raw}
        return out

    def data_path(self, subject: int, path=None, force_update=False, update_path=None, verbose=None) -> list[Path]:
        """The subject's recordings, in time order (their names are their start times)."""
        folder = self.root / f"subject{subject:02d}"
        files = sorted(p for p in folder.iterdir() if p.name.endswith("_raw.fif")) if folder.is_dir() else []
        if not files:
            raise FileNotFoundError(f"no record-[…]_raw.fif files in {folder}")
        return files
