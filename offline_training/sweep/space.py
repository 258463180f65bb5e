"""A sweep's search space, read from YAML or JSON; no Ray needed to parse or check it.

A space file (``examples/sweep_small.yaml`` is one)::

    seed: 0                  # seeds the sampling, so a rerun draws the same configurations
    metric: val_loss         # val_loss (lower is better) or val_top1; ASHA and "best" use it
    split: by-image          # the split every trial trains, validates and tests on
    subjects: [1, 2]         # grid: every configuration runs on each subject's trials alone ("all": pooled)
    seeds: [0, 1]            # grid: ... and with each training seed
    params:
      student: seed                         # a constant
      lr: {loguniform: [3.0e-4, 3.0e-3]}    # a distribution
      dropout: {uniform: [0.1, 0.5]}
      nperseg: {choice: [32, 40]}

Distributions: ``choice: [..]``, ``uniform: [lo, hi]``, ``loguniform: [lo, hi]``, ``randint: [lo, hi)``.
Parameters (:data:`PARAMS`) map onto :class:`~offline_training.training.fit.TrainConfig` by
:func:`train_config`; a student argument (``dropout``, ``width``, ``n_spatial``, ``hidden``) reaches
only a student whose constructor takes it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from offline_training.students.registry import STUDENTS, canonical
from offline_training.training.config import TrainConfig


class SpaceError(ValueError):
    """The space file is missing, unreadable or names something this trainer does not know."""


DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")
TRAIN_FIELDS = ("student", "kd", "alpha", "temperature", "epochs", "batch_size", "lr", "weight_decay", "patience",
                "crop_start", "crop_stop")
FEATURE_FIELDS = ("nperseg", "log")  # SpectrogramConfig: segment length and magnitude/log mode
STUDENT_FIELDS = ("dropout", "width", "n_spatial", "hidden")
PARAMS = TRAIN_FIELDS + FEATURE_FIELDS + STUDENT_FIELDS
METRICS = {"val_loss": "min", "val_top1": "max"}


@dataclass(frozen=True)
class SweepSpace:
    """A parsed space file.

    Attributes
    ----------
    params : parameter → constant or ``{distribution: arguments}`` (see module docstring).
    subjects : grid over subjects (ints), or ``("all",)`` for the pooled data.
    seeds : grid over training seeds.
    seed : seeds the sampling of ``params`` (Ray's ``random_state``).
    metric : ``val_loss`` or ``val_top1``: what ASHA compares and what "best" means.
    split : the split name (``by-image``, ``by-block``, ``loso-<s>``).
    source : the file it came from.
    """

    params: dict[str, Any] = field(default_factory=dict)
    subjects: tuple = ("all",)
    seeds: tuple[int, ...] = (0,)
    seed: int = 0
    metric: str = "val_loss"
    split: str = "by-image"
    source: str = ""

    @property
    def mode(self) -> str:
        """``min`` or ``max``: the direction of :attr:`metric`."""
        return METRICS[self.metric]

    @property
    def grid_size(self) -> int:
        """Trials per sampled configuration: subjects × seeds."""
        return len(self.subjects) * len(self.seeds)

    def max_epochs(self) -> int:
        """The most epochs any configuration can train (ASHA's ``max_t``)."""
        spec = self.params.get("epochs", TrainConfig().epochs)
        if isinstance(spec, dict):
            (kind, args), = spec.items()
            return int(max(args) - (1 if kind == "randint" else 0))
        return int(spec)

    def to_dict(self) -> dict:
        return {"params": self.params, "subjects": list(self.subjects), "seeds": list(self.seeds), "seed": self.seed,
                "metric": self.metric, "split": self.split, "source": self.source}

    @classmethod
    def from_dict(cls, data: dict, source: str = "") -> SweepSpace:
        """Check ``data`` (the file's content) and build the space; raises :class:`SpaceError`."""
        where = source or "space"
        if not isinstance(data, dict):
            raise SpaceError(f"{where}: expected a mapping with 'params' (and subjects, seeds, metric, split)")
        unknown = set(data) - {"params", "subjects", "seeds", "seed", "metric", "split"}
        if unknown:
            raise SpaceError(f"{where}: unknown key(s) {sorted(unknown)}; known: params, subjects, seeds, seed, "
                             "metric, split")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise SpaceError(f"{where}: 'params' must map parameter names to values or distributions")
        for name, spec in params.items():
            _check_param(where, name, spec)
        subjects = _as_tuple(data.get("subjects", "all"))
        if any(s != "all" and not isinstance(s, int) for s in subjects) or ("all" in subjects and len(subjects) > 1):
            raise SpaceError(f"{where}: 'subjects' must be a list of subject ids (integers) or 'all'; got {subjects}")
        seeds = _as_tuple(data.get("seeds", 0))
        if not seeds or any(not isinstance(s, int) for s in seeds):
            raise SpaceError(f"{where}: 'seeds' must be a list of integers; got {seeds}")
        metric = data.get("metric", "val_loss")
        if metric not in METRICS:
            raise SpaceError(f"{where}: metric {metric!r} unknown; use one of {sorted(METRICS)}")
        return cls(params=dict(params), subjects=subjects, seeds=seeds, seed=int(data.get("seed", 0)),
                   metric=metric, split=str(data.get("split", "by-image")), source=source)


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def _check_param(where: str, name: str, spec) -> None:
    if name not in PARAMS:
        raise SpaceError(f"{where}: unknown parameter {name!r}; known: {', '.join(PARAMS)}")
    if not isinstance(spec, dict):
        values = [spec]
    else:
        if len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
            raise SpaceError(f"{where}: {name}: a distribution is one of {{{', '.join(DISTRIBUTIONS)}: [...]}}; "
                             f"got {spec}")
        (kind, args), = spec.items()
        if not isinstance(args, list) or not args:
            raise SpaceError(f"{where}: {name}: {kind} needs a list of arguments; got {args!r}")
        if kind != "choice":
            if len(args) != 2 or not all(isinstance(a, int | float) for a in args) or not args[0] < args[1]:
                raise SpaceError(f"{where}: {name}: {kind} needs [low, high] with low < high; got {args}")
            if kind == "loguniform" and args[0] <= 0:
                raise SpaceError(f"{where}: {name}: loguniform needs low > 0; got {args}")
            return
        values = args
    if name == "student":
        bad = [v for v in values if canonical(v) not in STUDENTS]
        if bad:
            raise SpaceError(f"{where}: student {bad[0]!r} unknown; choose from {sorted(STUDENTS)}")


def load_space(path: str | Path) -> SweepSpace:
    """Read a ``.yaml``/``.yml`` or ``.json`` space file; raises :class:`SpaceError` naming the problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpaceError(f"cannot read space file {path}: {err.strerror or err}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise SpaceError(f"space file {path}: expected .yaml, .yml or .json")
    except SpaceError:
        raise
    except Exception as err:  # yaml.YAMLError, json.JSONDecodeError
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpaceError(f"space file {path} is not valid {path.suffix[1:].upper()}: {first}") from None
    return SweepSpace.from_dict(data, source=str(path))


def to_tune(space: SweepSpace) -> dict:
    """Ray Tune's ``param_space``: distributions as ``tune.*`` domains, subjects and seeds as grids."""
    from ray import tune

    out: dict[str, Any] = {}
    for name, spec in space.params.items():
        if isinstance(spec, dict):
            (kind, args), = spec.items()
            out[name] = tune.choice(args) if kind == "choice" else getattr(tune, kind)(*args)
        else:
            out[name] = spec
    out["subject"] = tune.grid_search(list(space.subjects))
    out["seed"] = tune.grid_search(list(space.seeds))
    return out


def canonical_params(params: dict) -> dict:
    """``params`` with the student under its registry name (``cnn`` → ``seed``: sweeps from before the
    rename), for everything that reads a sweep's rows."""
    return {**params, "student": canonical(str(params["student"]))} if "student" in params else dict(params)


def student_of(params: dict) -> str:
    """The student a trial trained (the training default when the space left it out)."""
    return canonical(str(params.get("student", TrainConfig().student)))


def config_id(params: dict) -> str:
    """A short stable name for a sampled configuration: the same for every subject and seed it ran on."""
    shared = {k: v for k, v in params.items() if k not in ("subject", "seed")}
    return hashlib.sha1(json.dumps(shared, sort_keys=True, default=str).encode()).hexdigest()[:8]


def describe(params: dict) -> str:
    """``seed lr=1.2e-03 dropout=0.31 ...``: a configuration in one short line."""
    parts = [str(params.get("student", TrainConfig().student))]
    for name, value in sorted(params.items()):
        if name in ("student", "subject", "seed"):
            continue
        parts.append(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}")
    return " ".join(parts)


def train_config(params: dict, sfreq: float, threads: int | None = None,
                 base: TrainConfig | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of one trial: ``base`` with the sampled ``params`` (and its ``seed``),
    the data's rate, ``threads`` torch threads. Student arguments the student does not take are left out."""
    base = base or TrainConfig()
    train = {k: params[k] for k in TRAIN_FIELDS if k in params}
    for key in ("epochs", "batch_size", "patience", "crop_start", "crop_stop"):
        if key in train:
            train[key] = int(train[key])
    features = {k: params[k] for k in FEATURE_FIELDS if k in params}
    if "nperseg" in features:
        features["nperseg"] = int(features["nperseg"])
    spectrogram = replace(base.spectrogram, sfreq=sfreq, **features)
    config = replace(base, **train, spectrogram=spectrogram, threads=threads, seed=int(params.get("seed", base.seed)))
    if "student" in train and "spectrogram" not in params:  # the student's own feature mode (phase: complex)
        config = replace(config, spectrogram=replace(
            TrainConfig.for_student(config.student).spectrogram, sfreq=sfreq, **features))
    from offline_training.students import student_class  # the models: torch

    takes = inspect.signature(student_class(config.student)).parameters
    student_kwargs = {k: params[k] for k in STUDENT_FIELDS if k in params and k in takes}
    for key in ("width", "n_spatial", "hidden"):
        if key in student_kwargs:
            student_kwargs[key] = int(student_kwargs[key])
    return replace(config, student_kwargs={**base.student_kwargs, **student_kwargs})
