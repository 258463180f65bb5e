"""The students' names and the features each reads (torch-free: the command line and the training
config read it without importing the models; :mod:`offline_training.students` builds them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StudentSpec:
    """What a student reads and how it is built.

    Attributes
    ----------
    features : "spectrogram" or "erp" (:class:`bci_stream.contract.features.Features` kind).
    mode : spectrogram mode the student needs ("magnitude", "log" or "complex"; None: any non-complex).
    fmax : default highest kept bin, Hz (None: all bins).
    description : one line for reports.
    """

    features: str
    mode: str | None = None
    fmax: float | None = None
    description: str = ""


STUDENTS: dict[str, StudentSpec] = {
    "ccanet": StudentSpec("erp", description="CCANet: CCA spectrum + time course, LDA-initialised read-out (default)"),
    "seed": StudentSpec("spectrogram", None, None, "seed CNN on |STFT| (Ferrante et al.)"),
    "phase": StudentSpec("spectrogram", "complex", 60.0, "phase-aware STFT net (spatial, temporal, square, pool)"),
    "eegnet": StudentSpec("erp", description="braindecode EEGNet on the low-passed ERP"),
    "shallow": StudentSpec("erp", description="braindecode ShallowFBCSPNet on the low-passed ERP"),
    "deep4": StudentSpec("erp", description="braindecode Deep4Net on the low-passed ERP"),
}
ALIASES = {"cnn": "seed"}  # run folders and cards from before the rename


def canonical(name: str) -> str:
    """The registry name of ``name`` (``cnn`` → ``seed``)."""
    return ALIASES.get(name, name)


def student_spec(name: str) -> StudentSpec:
    """The :class:`StudentSpec` of a student name (aliases accepted)."""
    key = canonical(name)
    if key not in STUDENTS:
        raise ValueError(f"unknown student {name!r}; choose from {sorted(STUDENTS)}")
    return STUDENTS[key]
