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

from offline_training.students.registry import (  # noqa: F401
    ALIASES,
    STUDENTS,
    StudentSpec,
    canonical,
    student_label,
    student_spec,
)

__all__ = ["STUDENTS", "StudentSpec", "build_student", "build_from_card_architecture", "student_spec",
           "student_args", "student_class", "student_label", "SpectrogramCNN", "PhaseSTFTNet", "CCANet",
           "BraindecodeStudent", "EEGLSTM"]

_BUILDERS = {"build_student", "build_from_card_architecture", "student_args", "student_class"}
_MODELS = {"SpectrogramCNN": "seed", "PhaseSTFTNet": "phase", "CCANet": "ccanet", "BraindecodeStudent": "eegnet",
           "EEGLSTM": "lstm"}


def __getattr__(name: str):
    """The models and builders, imported on first use: the registry stays free of torch (``bci-train --help``)."""
    if name in _BUILDERS:
        from offline_training.students import build
        return getattr(build, name)
    if name in _MODELS:
        from offline_training.students.build import student_class
        return student_class(_MODELS[name])
    if name == "BRAINDECODE_CLASSES":
        from offline_training.students.braindecode_models import BRAINDECODE_CLASSES
        return BRAINDECODE_CLASSES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
