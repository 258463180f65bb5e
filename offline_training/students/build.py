"""Students by name: the builders the registry's specs name (imports torch and the chosen model)."""

from __future__ import annotations

import importlib

from torch import nn

from offline_training.students.registry import canonical, student_spec


def student_class(name: str) -> type[nn.Module]:
    """The module class behind student ``name`` (to see which arguments it takes), imported on demand."""
    module, _, attr = student_spec(name, legacy=True).builder.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_student(name: str, **kwargs) -> nn.Module:
    """A student by name with its constructor arguments (:func:`student_args`: spectrogram students take
    ``n_chans, n_freqs, n_frames, n_outputs``; erp students ``n_chans, n_times, n_outputs, sfreq``;
    ``lstm``, only for old run folders: ``n_chans, n_outputs``)."""
    spec = student_spec(name, legacy=True)
    return student_class(name)(*spec.builder_args, **kwargs)


def student_args(name: str, feature_shape: tuple[int, int, int], n_outputs: int, column_sfreq: float,
                 **kwargs) -> dict:
    """Constructor arguments of student ``name`` for features of ``feature_shape`` ``(n_chans, n_rows,
    n_columns)``; ``column_sfreq``: rate of the columns, Hz (the erp kind's output rate)."""
    return {**student_spec(name, legacy=True).arguments(feature_shape, n_outputs, column_sfreq), **kwargs}


def build_from_card_architecture(architecture: dict) -> nn.Module:
    """An untrained student shaped like the one a model card describes (its ``architecture`` entry:
    the student name plus its constructor arguments; training settings in it are ignored)."""
    name = canonical(architecture.get("student", "seed"))
    training = {"student", "kd", "alpha", "temperature", "sweep", "objective", "mse_weight"}
    return build_student(name, **{k: v for k, v in architecture.items() if k not in training})

