"""Students by name: the builders the registry's names resolve to (imports torch and every model)."""

from __future__ import annotations

from torch import nn

from offline_training.students.registry import canonical, student_spec
from offline_training.students.braindecode_models import BRAINDECODE_CLASSES, BraindecodeStudent
from offline_training.students.cca_net import CCANet
from offline_training.students.lstm import EEGLSTM
from offline_training.students.phase_stft import PhaseSTFTNet
from offline_training.students.seed_cnn import SpectrogramCNN



def build_student(name: str, **kwargs) -> nn.Module:
    """A student by name with its constructor arguments: spectrogram students take ``n_chans, n_freqs,
    n_frames, n_outputs``; braindecode students ``n_chans, n_times, n_outputs, sfreq`` (``lstm``, only
    for old run folders: ``n_chans, n_outputs``)."""
    key = canonical(name)
    if key == "lstm":
        return EEGLSTM(**kwargs)
    student_spec(key)
    if key == "seed":
        return SpectrogramCNN(**kwargs)
    if key == "phase":
        return PhaseSTFTNet(**kwargs)
    if key == "ccanet":
        return CCANet(**kwargs)
    return BraindecodeStudent(key, **kwargs)


def student_class(name: str) -> type[nn.Module]:
    """The module class behind student ``name`` (to see which arguments it takes)."""
    key = canonical(name)
    return {"lstm": EEGLSTM, "seed": SpectrogramCNN, "phase": PhaseSTFTNet, "ccanet": CCANet}.get(key, BraindecodeStudent)


def student_args(name: str, feature_shape: tuple[int, int, int], n_outputs: int, column_sfreq: float,
                 **kwargs) -> dict:
    """Constructor arguments of student ``name`` for features of ``feature_shape`` ``(n_chans, n_rows,
    n_columns)``; ``column_sfreq``: rate of the columns, Hz (the erp kind's output rate)."""
    n_chans, n_rows, n_cols = feature_shape
    if canonical(name) in BRAINDECODE_CLASSES or canonical(name) == "ccanet":
        return dict(n_chans=n_chans, n_times=n_cols, n_outputs=n_outputs, sfreq=column_sfreq, n_freqs=n_rows, **kwargs)
    return dict(n_chans=n_chans, n_freqs=n_rows, n_frames=n_cols, n_outputs=n_outputs, **kwargs)


def build_from_card_architecture(architecture: dict) -> nn.Module:
    """An untrained student shaped like the one a model card describes (its ``architecture`` entry:
    the student name plus its constructor arguments; training settings in it are ignored)."""
    name = canonical(architecture.get("student", "seed"))
    training = {"student", "kd", "alpha", "temperature", "sweep", "objective", "mse_weight"}
    return build_student(name, **{k: v for k, v in architecture.items() if k not in training})
