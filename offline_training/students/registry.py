"""The one student registry: each student's name, label, features, builder and argument builder
(torch-free: the command line and the training config read it without importing the models;
:mod:`offline_training.students.build` imports the builder a spec names, on first use).

Everything that lists students derives from :data:`STUDENTS`: ``bci-train``'s ``--student`` choices,
report labels (:func:`student_label`), ``build_student``/``student_class``/``student_args``, the order
``compare`` trains them in (:func:`feature_order`) and the sweep's canonical names. Adding a student is
one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

ArgumentBuilder = Callable[[tuple[int, int, int], int, float], dict]


def spectrogram_args(feature_shape: tuple[int, int, int], n_outputs: int, column_sfreq: float) -> dict:
    """Constructor arguments of a spectrogram student: ``n_chans, n_freqs, n_frames, n_outputs``."""
    n_chans, n_rows, n_cols = feature_shape
    return dict(n_chans=n_chans, n_freqs=n_rows, n_frames=n_cols, n_outputs=n_outputs)


def time_args(feature_shape: tuple[int, int, int], n_outputs: int, column_sfreq: float) -> dict:
    """Constructor arguments of an erp (time-course) student: ``n_chans, n_times, n_outputs, sfreq, n_freqs``
    (``column_sfreq``: the erp output rate, Hz, which sets kernel lengths given in seconds)."""
    n_chans, n_rows, n_cols = feature_shape
    return dict(n_chans=n_chans, n_times=n_cols, n_outputs=n_outputs, sfreq=column_sfreq, n_freqs=n_rows)


def raw_args(feature_shape: tuple[int, ...], n_outputs: int, column_sfreq: float) -> dict:
    """Constructor arguments of a raw-EEG student (the old LSTM): ``n_chans, n_outputs``."""
    return dict(n_chans=feature_shape[0], n_outputs=n_outputs)


@dataclass(frozen=True)
class StudentSpec:
    """What a student reads and how it is built.

    Attributes
    ----------
    features : "spectrogram" or "erp" (:class:`bci_stream.contract.features.Features` kind; "raw": old runs).
    mode : spectrogram mode the student needs ("magnitude", "log" or "complex"; None: any non-complex).
    fmax : default highest kept bin, Hz (None: all bins).
    description : one line for reports and ``--help``.
    label : a table row's name (e.g. "seed CNN").
    builder : ``"module:Class"`` of the ``nn.Module`` (imported only when a student is built).
    builder_args : positional arguments before the shape arguments (braindecode's model name).
    arguments : the shape → constructor-arguments function (:func:`spectrogram_args`, :func:`time_args`).
    """

    features: str
    mode: str | None = None
    fmax: float | None = None
    description: str = ""
    label: str = ""
    builder: str = ""
    builder_args: tuple = ()
    arguments: ArgumentBuilder = field(default=time_args, compare=False)


_BD = "offline_training.students.braindecode_models:BraindecodeStudent"
STUDENTS: dict[str, StudentSpec] = {
    "ccanet": StudentSpec("erp", description="CCANet: CCA spectrum + time course, LDA-initialised read-out (default)",
                          label="CCANet (CCA spectrum + time course)",
                          builder="offline_training.students.cca_net:CCANet"),
    "seed": StudentSpec("spectrogram", None, None, "seed CNN on |STFT| (Ferrante et al.)", label="seed CNN",
                        builder="offline_training.students.seed_cnn:SpectrogramCNN", arguments=spectrogram_args),
    "phase": StudentSpec("spectrogram", "complex", 60.0, "phase-aware STFT net (spatial, temporal, square, pool)",
                         label="phase-aware STFT net", builder="offline_training.students.phase_stft:PhaseSTFTNet",
                         arguments=spectrogram_args),
    "eegnet": StudentSpec("erp", description="braindecode EEGNet on the low-passed ERP",
                          label="EEGNet on ERP (braindecode)", builder=_BD, builder_args=("eegnet",)),
    "shallow": StudentSpec("erp", description="braindecode ShallowFBCSPNet on the low-passed ERP",
                           label="ShallowFBCSPNet on ERP (braindecode)", builder=_BD, builder_args=("shallow",)),
    "deep4": StudentSpec("erp", description="braindecode Deep4Net on the low-passed ERP",
                         label="Deep4Net on ERP (braindecode)", builder=_BD, builder_args=("deep4",)),
}
ALIASES = {"cnn": "seed"}  # run folders, cards and sweep rows from before the rename
# built only to load old run folders; never offered on the command line
LEGACY: dict[str, StudentSpec] = {
    "lstm": StudentSpec("raw", description="old raw-EEG LSTM baseline (old run folders only)", label="LSTM",
                        builder="offline_training.students.lstm:EEGLSTM", arguments=raw_args),
}


def canonical(name: str) -> str:
    """The registry name of ``name`` (``cnn`` → ``seed``)."""
    return ALIASES.get(name, name)


def student_spec(name: str, legacy: bool = False) -> StudentSpec:
    """The :class:`StudentSpec` of a student name (aliases accepted; ``legacy``: old run folders' too)."""
    key = canonical(name)
    if key in STUDENTS:
        return STUDENTS[key]
    if legacy and key in LEGACY:
        return LEGACY[key]
    raise ValueError(f"unknown student {name!r}; choose from {sorted(STUDENTS)}")


def student_choices(aliases: bool = True) -> list[str]:
    """The ``--student`` choices: every registered name (and its aliases)."""
    return list(STUDENTS) + (list(ALIASES) if aliases else [])


def student_label(name: str) -> str:
    """A table row's name for student ``name`` (its registry label; the name itself when unknown)."""
    key = canonical(name)
    spec = STUDENTS.get(key) or LEGACY.get(key)
    return spec.label if spec is not None and spec.label else name


def feature_order(name: str) -> tuple:
    """A sort key that groups students reading the same features (magnitude spectrograms, complex, then
    erp), so runs in that order reuse each feature set (``compare``)."""
    spec = student_spec(name)
    return (spec.features != "spectrogram", spec.mode == "complex", canonical(name))


def students_help() -> str:
    """One line per student for ``--help``: name and description."""
    alias = {v: k for k, v in ALIASES.items()}
    return "; ".join(f"{n}{f' (alias {alias[n]})' if n in alias else ''}: {s.description}" for n, s in STUDENTS.items())
