"""Students: models that know nothing about files or training loops (braindecode style), one per file,
and the registry that names them and the features each one reads.

::

    | name | model | features |
    |---|---|---|
    | ``ccanet`` (default) | :class:`CCANet`, CCA spectrum + time course, LDA-initialised read-out | erp |
    | ``seed`` (alias ``cnn``) | :class:`SpectrogramCNN`, the seed's CNN on STFT magnitudes | spectrogram, magnitude |
    | ``phase`` | :class:`PhaseSTFTNet`, ShallowNet's order on the complex STFT | spectrogram, complex, bins <= 60 Hz |
    | ``eegnet`` / ``shallow`` / ``deep4`` | braindecode's EEGNet / ShallowFBCSPNet / Deep4Net | erp |
"""

from __future__ import annotations

from offline_training.students.registry import ALIASES, STUDENTS, StudentSpec, canonical, student_spec  # noqa: F401

__all__ = ["STUDENTS", "StudentSpec", "build_student", "build_from_card_architecture", "student_spec",
           "student_args", "student_class", "SpectrogramCNN", "PhaseSTFTNet", "CCANet", "BraindecodeStudent", "EEGLSTM"]

_LAZY = {"build_student", "build_from_card_architecture", "student_args", "student_class", "SpectrogramCNN",
         "PhaseSTFTNet", "CCANet", "BraindecodeStudent", "EEGLSTM", "BRAINDECODE_CLASSES"}


def __getattr__(name: str):
    """The models and builders, imported on first use: the registry stays free of torch (``bci-train --help``)."""
    if name in _LAZY:
        from offline_training.students import build
        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
