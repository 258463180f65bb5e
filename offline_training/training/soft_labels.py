"""Teacher soft labels for knowledge distillation: one function for ``bci-train fit``/``run`` and the sweep."""

from __future__ import annotations

import numpy as np

from bci_stream.contract.trials import Trials

PHANTOM_TEACHER = "phantom class-similarity (no images; stand-in for a CLIP teacher)"


def soft_labels_for(trials: Trials, teacher_cache: str | None, kd: bool, required: bool = True,
                    without_kd: str = "use --no-kd") -> tuple[np.ndarray | None, str]:
    """Teacher probabilities per trial ``(n_trials, n_classes)`` and the teacher's name; ``(None, "")``
    without KD, or when no teacher exists and ``required`` is False (``run`` then trains on hard labels
    and says so). A cache made for other classes is refused. ``without_kd``: how the caller turns KD off
    (for the message)."""
    if not kd:
        return None, ""
    if teacher_cache:
        from offline_training.training.teacher import load_soft_labels

        cache = load_soft_labels(teacher_cache)
        if cache.class_names and cache.class_names != list(trials.class_names):
            raise ValueError(f"teacher cache {teacher_cache} was made for other classes; rerun `bci-train teacher`")
        return cache.for_trials(trials.image_ids), cache.teacher
    if trials.soft_labels is not None:
        return trials.soft_labels, PHANTOM_TEACHER
    if not required:
        print("no teacher (no --teacher cache and no stimulus images): training on hard labels, no KD")
        return None, ""
    raise ValueError(f"KD needs soft labels: run `bci-train teacher` and pass --teacher CACHE, or {without_kd}")
