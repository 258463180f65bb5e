"""The trainer's students as scikit-learn estimators: ``fit(X, y)`` on ``(n_trials, n_channels, n_times)``
arrays, so a student drops into a :class:`~sklearn.pipeline.Pipeline`, :func:`~sklearn.model_selection.cross_val_score`
or a MOABB evaluation beside the field's pipelines.

Nothing is re-implemented here: the student comes from the registry (:mod:`offline_training.students`), its
features from the config (:func:`offline_training.experiments.pipeline.for_data`), the training loop is
:func:`offline_training.training.fit.fit` (hard labels: an estimator has no teacher) and the probabilities are
:func:`offline_training.training.fit.predict` on the normalised inputs, as the trainer's own test does.

Example::

    from sklearn.model_selection import cross_val_score
    from offline_training.estimators import StudentClassifier

    scores = cross_val_score(StudentClassifier("shallow", sfreq=256, epochs=20), X, y, cv=4)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from bci_stream.contract.trials import Trials


class StudentClassifier(ClassifierMixin, BaseEstimator):
    """A registry student trained by the project's fit loop, as a scikit-learn classifier.

    Parameters
    ----------
    student : registry name ("shallow", "eegnet", "deep4", "seed", "phase"; :data:`offline_training.students.registry.STUDENTS`).
    sfreq : sampling rate of ``X``, Hz.
    window : ``(start, stop)`` seconds from the first sample of each trial that the student reads
        (None: the whole trial).
    segment : STFT segment, seconds (spectrogram students; None: the seed's 40 ms).
    epochs, batch_size, lr, weight_decay, patience : the fit loop's schedule (:class:`~offline_training.training.config.TrainConfig`).
    val_fraction : share of the training trials held out (stratified) to pick the best epoch.
    seed : seeds the split, the weights and the batch order.
    threads : torch CPU threads (None: torch's default).
    device : "cpu", "cuda" or "auto".
    student_kwargs : extra constructor arguments of the student (e.g. ``{"n_filters_time": 20}``).
    run_dir : folder the run is written to (kept: ``bci-train export RUN_DIR`` turns it into a live model);
        None: a temporary folder, removed after ``fit``.

    Attributes
    ----------
    classes_ : the labels seen in ``fit``, sorted; column order of :meth:`predict_proba`.
    model_ : the trained torch module (eval mode, CPU).
    normaliser_ : feature standardisation fitted on the training trials.
    config_ : the :class:`~offline_training.training.config.TrainConfig` the student was trained with.
    n_channels_, n_times_ : the trial shape ``fit`` saw (``predict`` needs the same).
    history_ : per-epoch training history (the run's ``run.json``).
    """

    def __init__(self, student: str = "shallow", sfreq: float = 256.0, window: tuple[float, float] | None = None,
                 segment: float | None = None, epochs: int = 30, batch_size: int = 64, lr: float = 2e-3,
                 weight_decay: float = 1e-2, patience: int = 8, val_fraction: float = 0.2, seed: int = 0,
                 threads: int | None = None, device: str = "cpu", student_kwargs: dict | None = None,
                 run_dir: str | None = None):
        self.student = student
        self.sfreq = sfreq
        self.window = window
        self.segment = segment
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.val_fraction = val_fraction
        self.seed = seed
        self.threads = threads
        self.device = device
        self.student_kwargs = student_kwargs
        self.run_dir = run_dir

    # --- scikit-learn API ---------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray) -> StudentClassifier:
        """Train on trials ``X`` ``(n_trials, n_channels, n_times)`` (any unit; the features are
        standardised) with labels ``y`` ``(n_trials,)``. Returns ``self``."""
        from offline_training.experiments.pipeline import for_data
        from offline_training.training.config import TrainConfig
        from offline_training.training.fit import fit

        X = _check_trials(X)
        self.classes_, labels = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"fit needs at least two classes; y holds only {self.classes_.tolist()}")
        self.n_channels_, self.n_times_ = X.shape[1:]
        trials = self._trials(X, labels)
        window = self.window if self.window is not None else (0.0, X.shape[-1] / self.sfreq)
        base = TrainConfig.for_student(
            self.student, kd=False, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            weight_decay=self.weight_decay, patience=self.patience, seed=self.seed, threads=self.threads,
            device=self.device, student_kwargs=dict(self.student_kwargs or {}))
        self.config_ = for_data(base, trials, window=tuple(window), segment=self.segment)
        train, val = train_test_split(np.arange(len(X)), test_size=self.val_fraction, random_state=self.seed,
                                      stratify=labels)
        split = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(val)}
        with tempfile.TemporaryDirectory(prefix="bci-student-") as tmp:
            run_dir = Path(self.run_dir) if self.run_dir is not None else Path(tmp)
            fitted = fit(trials, split, self.config_, run_dir, progress=False)  # the best model, in memory
            if self.run_dir is not None:  # a kept folder is a run folder (load_model reads it)
                import json

                from bci_stream.io.safe_write import write_text

                write_text(run_dir / "run.json", json.dumps(fitted.info, indent=1))
        self.model_, self.normaliser_ = fitted.model, fitted.normaliser
        self.history_ = fitted.info["history"]
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n_trials, n_classes)``, columns in :attr:`classes_` order."""
        from offline_training.training.fit import model_inputs, predict

        check_is_fitted(self, "model_")
        X = _check_trials(X)
        if X.shape[1:] != (self.n_channels_, self.n_times_):
            raise ValueError(f"trials of shape {X.shape[1:]}; this student was fitted on {(self.n_channels_, self.n_times_)}")
        trials = self._trials(X, np.zeros(len(X), np.int64))
        x = self.normaliser_(model_inputs(trials, self.config_, jitter=False)).astype(np.float32)
        return predict(self.model_, x)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable label per trial ``(n_trials,)`` (values of :attr:`classes_`)."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def _trials(self, X: np.ndarray, labels: np.ndarray) -> Trials:
        names = [str(c) for c in getattr(self, "classes_", ["0", "1"])]
        return Trials(eeg=X, labels=labels, image_ids=np.array([f"trial{i}" for i in range(len(X))]),
                      subjects=np.zeros(len(X)), runs=np.zeros(len(X)), sfreq=float(self.sfreq),
                      ch_names=[f"ch{i}" for i in range(X.shape[1])], class_ids=names, class_names=names,
                      source="scikit-learn arrays", unit="a.u.")


def _check_trials(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3:
        raise ValueError(f"X must be trials (n_trials, n_channels, n_times); got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X holds non-finite samples (NaN or inf); drop or repair those trials first")
    return X
