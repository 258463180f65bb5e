"""``bci-train sweep``: students, features and hyperparameters over subjects and seeds, on Ray Tune.

Each trial is one :func:`~offline_training.experiments.pipeline.classes_run` (so one
:func:`~offline_training.training.fit.fit`): there is no second training loop. ``fit`` reports every epoch's
validation loss and top-1 to Tune, and ASHA stops the trials that trail at its rungs.

Where things run and live:

- Without ``address`` a local Ray starts on this machine, bound to loopback, dashboard and usage
  statistics off. With ``address`` the same code joins an existing cluster (``ray start --head`` on one
  machine, ``ray start --address`` on the others).
- The data SPEC (and the ``teacher`` cache) are resolved by each trial on the worker that runs it, and
  every trial writes its run folder to ``SWEEP_DIR/<trial_id>/``: on a cluster of several machines the
  data paths and ``SWEEP_DIR`` must be on storage every node sees (NFS or the like), and the package
  must be installed on every node.
- ``SWEEP_DIR`` is Ray Tune's experiment folder too (``tuner.pkl``, ``experiment_state-*.json``, and in
  each trial folder Tune's ``params.json``/``result.json`` beside the run's ``model.safetensors``,
  ``metrics.json``, ...). ``sweep.json`` records the command; ``sweep.csv``/``sweep.md`` summarise.

Resuming: ``Tuner.restore`` brings back which trials are finished, running or pending; a trial that
was cut off finds its ``train_state.json`` in its run folder and ``fit`` continues from that epoch (the
run folder is the trial's checkpoint, so no second copy goes through Tune's checkpoint store).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from bci_stream.contract.trials import Trials
from bci_stream.io.safe_write import write_text
from offline_training.students.registry import STUDENTS
from offline_training.sweep.space import SweepSpace, canonical_params, config_id, load_space, train_config
from offline_training.training.soft_labels import soft_labels_for

log = logging.getLogger(__name__)

MANIFEST = "sweep.json"
SCHEDULERS = ("asha", "fifo")


class SweepError(ValueError):
    """A user error: bad options, a missing sweep folder, an unreachable cluster, Ray not installed
    (a ValueError: ``bci-train`` prints it as one line and exits 2)."""


@dataclass(frozen=True)
class SweepConfig:
    """One ``bci-train sweep`` command; the CLI's defaults come from here.

    Attributes
    ----------
    data : data SPEC, resolved on the workers.
    space : the parsed space file.
    out : the sweep folder.
    trials : trials in all (configurations × subjects × seeds); a multiple of the space's grid.
    address : an existing Ray cluster (``HOST:PORT`` or ``auto``); None starts a local Ray.
    cpus_per_trial, gpus_per_trial : what Ray reserves for each trial (torch uses ``cpus_per_trial`` threads).
    num_cpus : CPUs a local Ray may use (None: all of this machine's).
    scheduler : ``asha`` (stops trailing trials early) or ``fifo`` (every trial runs to its end).
    grace_period, reduction_factor : ASHA's first rung (epochs) and its keep-1-in-``reduction_factor``.
    teacher : soft-label cache for data without its own (the phantom brings its own).
    stop_after : end this session once this many trials have ended, as Ctrl-C would (``resume`` continues).
    """

    data: str = ""
    space: SweepSpace = field(default_factory=SweepSpace)
    out: str = ""
    trials: int = 4
    address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    num_cpus: int | None = None
    scheduler: str = "asha"
    grace_period: int = 1
    reduction_factor: float = 2.0
    teacher: str | None = None
    stop_after: int | None = None

    @property
    def configurations(self) -> int:
        """Configurations sampled from the space (Ray Tune's ``num_samples``)."""
        return self.trials // self.space.grid_size

    def check(self) -> None:
        """Raise :class:`SweepError` naming the first bad option (before Ray starts)."""
        grid = self.space.grid_size
        if self.trials < 1 or self.trials % grid:
            raise SweepError(f"--trials {self.trials} is not a positive multiple of the space's grid "
                             f"({len(self.space.subjects)} subject(s) × {len(self.space.seeds)} seed(s) = {grid}); "
                             f"use e.g. --trials {grid * max(1, round(self.trials / grid))}")
        if self.scheduler not in SCHEDULERS:
            raise SweepError(f"--scheduler {self.scheduler!r} unknown; use {' or '.join(SCHEDULERS)}")
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise SweepError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
        if self.scheduler == "asha" and self.grace_period > self.space.max_epochs():
            raise SweepError(f"ASHA's grace period ({self.grace_period} epochs) exceeds the space's most epochs "
                             f"({self.space.max_epochs()})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["space"] = self.space.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict) -> SweepConfig:
        data = dict(data)
        space = dict(data.pop("space"))
        return cls(space=SweepSpace.from_dict({k: v for k, v in space.items() if k != "source"},
                                              source=space.get("source", "")), **data)


@dataclass(frozen=True)
class TrialContext:
    """What every trial needs beside its sampled parameters (sent to the workers with the trainable)."""

    data: str
    split: str
    sweep_dir: str
    metric: str
    teacher: str | None = None
    threads: int = 1
    gpus_per_trial: float = 0.0  # > 0: the trial trains on the GPU Ray reserved for it (never "auto")


# --- the trial ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def cached_trials(spec: str) -> Trials:
    """The data, once per worker process (Tune reuses a worker for the next trial)."""
    from offline_training.datasets import load_trials

    return load_trials(spec, progress=False)


def subject_trials(trials: Trials, subject) -> Trials:
    """``trials`` of one subject (``"all"``: all of them, with the loader's own splits)."""
    if subject == "all":
        return trials
    keep = trials.subjects == int(subject)
    if not keep.any():
        raise ValueError(f"no trials of subject {subject} in {trials.source} "
                         f"(its subjects: {', '.join(map(str, np.unique(trials.subjects)))})")
    return trials.subset(np.flatnonzero(keep))


def fit_trial(params: dict, context: TrialContext, trial_id: str,
              report: Callable[[dict], None] | None = None) -> tuple[dict, dict]:
    """Train and test one configuration on one subject with one seed in ``SWEEP_DIR/<trial_id>``, the
    work of one trial with or without Ray. ``report`` gets each epoch's history row except the last.
    A folder with a ``train_state.json`` (a trial cut off by an interruption) continues from it.
    Returns (the last epoch's history row, the test metrics)."""
    from offline_training.experiments.pipeline import classes_run
    from offline_training.training.device import trial_device
    from offline_training.training.splits import resolve_run_split

    run_dir = Path(context.sweep_dir) / trial_id
    trials = subject_trials(cached_trials(context.data), params["subject"])
    config = replace(train_config(params, trials.sfreq, threads=max(1, int(context.threads))),
                     device=trial_device(context.gpus_per_trial))
    soft, teacher = soft_labels_for(trials, context.teacher, config.kd, without_kd="set kd: false in the space")

    def on_epoch(row: dict) -> None:
        if report is not None and row["epoch"] < config.epochs:
            report(row)

    trial = {"subject": None if params["subject"] == "all" else int(params["subject"]),
             "sweep": {"dir": str(Path(context.sweep_dir).resolve()), "trial": trial_id, "config_id": config_id(params)}}
    split = resolve_run_split(trials, context.split, config.seed, config.reject)
    result = classes_run(trials, split, config, run_dir, soft, teacher, resume=(run_dir / "train_state.json").exists(),
                         progress=False, on_epoch=on_epoch, extra_info=trial)  # run.json written once, with the trial
    return result.fit.info["history"][-1], result.metrics


def run_trial(params: dict, context: TrialContext) -> None:
    """Ray Tune's trainable around :func:`fit_trial`.

    Reports each epoch's history row (``epoch``, ``val_loss``, ``val_top1``) except the last, then one
    final result with ``final=True`` and the test metrics once ``metrics.json`` is written (so ASHA,
    which stops whatever reaches its ``max_t``, never stops a trial before its test).
    """
    from ray import tune

    last, metrics = fit_trial(params, context, tune.get_context().get_trial_id(),
                              report=lambda row: tune.report({**row, "final": False}))
    tune.report({**last, "final": True, "test_top1": metrics["top1"], "test_top5": metrics["top5"]})


def _trial_dirname(trial) -> str:
    """Trial folders are named by trial id: ``SWEEP_DIR/<trial_id>``."""
    return trial.trial_id


# --- running ------------------------------------------------------------------------------------
def _check_address(address: str) -> None:
    """Fail in a second, with a one-line reason, when nothing listens at ``HOST:PORT``."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise SweepError(f"--address {address!r}: expected HOST:PORT (the GCS address `ray start --head` prints), "
                         "or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as err:
        raise SweepError(f"cannot reach a Ray cluster at {address} ({err.strerror or err}); start one with "
                         f"`ray start --head --port {port}` or leave out --address for a local Ray") from None


class _NoRestoreHint(logging.Filter):
    """Drops Tune's "resume with Tuner.restore(...)" hint: ``run_sweep`` prints the CLI's own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


def _start_ray(config: SweepConfig, verbose: bool) -> None:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # before Ray starts: no usage report leaves the machine
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own tables off (verbose=0); SweepProgress reports
    try:
        import ray
    except ImportError:
        raise SweepError("Ray is not installed: pip install 'bci-stream[scale]'") from None
    level = logging.INFO if verbose else logging.WARNING
    logging.getLogger("ray").setLevel(level)
    if not verbose:
        # "token authentication is enabled": the notice for the default we rely on (see below);
        # "failed to fetch metrics": Tune reading a folder with trials that have not started yet
        for name in ("ray._private.authentication.authentication_token_setup", "ray.tune.analysis.experiment_analysis"):
            logging.getLogger(name).setLevel(logging.ERROR)
        logging.getLogger("ray.tune.tune").addFilter(_NoRestoreHint())
    common = dict(include_dashboard=False, log_to_driver=verbose, logging_level=level, configure_logging=True)
    if config.address:
        _check_address(config.address)
        try:
            ray.init(address=config.address, **common)
        except (ConnectionError, RuntimeError) as err:
            if "AuthToken" in repr(err) or "AuthenticationError" in repr(err.__cause__):
                raise SweepError(f"the Ray cluster at {config.address} refused this client's token: set "
                                 "RAY_AUTH_MODE=token and the cluster's token (~/.ray/auth_token or RAY_AUTH_TOKEN), "
                                 "as for any client of a cluster with token authentication") from None
            raise SweepError(f"cannot join the Ray cluster at {config.address}: {str(err).splitlines()[0]}") from None
    else:
        # address="local": a new Ray even when `ray start` left one running (address=None would join it).
        # Ray advertises 127.0.0.1 to its own processes, so all its traffic stays on loopback; its gRPC
        # servers still listen on every interface, and the token authentication a new local Ray turns on
        # (Ray >= 2.5x; the token lives in ~/.ray/auth_token) refuses clients without the token.
        ray.init(address="local", num_cpus=config.num_cpus, _node_ip_address="127.0.0.1", **common)


def _trainable(config: SweepConfig, sweep_dir: Path):
    from ray import tune

    context = TrialContext(data=config.data, split=config.space.split, sweep_dir=str(sweep_dir),
                           metric=config.space.metric, teacher=config.teacher, threads=int(config.cpus_per_trial),
                           gpus_per_trial=config.gpus_per_trial)
    resources = {"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(run_trial, context=context), resources)


def _tuner(config: SweepConfig, sweep_dir: Path):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from offline_training.sweep.progress import ProgressCallback
    from offline_training.sweep.space import to_tune

    space = config.space
    if config.scheduler == "asha":
        scheduler = ASHAScheduler(time_attr="epoch", max_t=space.max_epochs(), grace_period=config.grace_period,
                                  reduction_factor=config.reduction_factor)
    else:
        scheduler = FIFOScheduler()
    # constant_grid_search: a sampled configuration is the same on every subject and seed (paired comparisons)
    search = BasicVariantGenerator(constant_grid_search=True, random_state=space.seed)
    return tune.Tuner(
        _trainable(config, sweep_dir),
        param_space=to_tune(space),
        tune_config=tune.TuneConfig(metric=space.metric, mode=space.mode, scheduler=scheduler, search_alg=search,
                                    num_samples=config.configurations, reuse_actors=True,
                                    trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(name=sweep_dir.name, storage_path=str(sweep_dir.parent), verbose=0,
                                  callbacks=[ProgressCallback()], failure_config=tune.FailureConfig(max_failures=0)),
    )


def _restored_tuner(config: SweepConfig, sweep_dir: Path):
    """The interrupted sweep's Tuner, from its folder (one line when there is nothing to restore)."""
    from ray import tune

    if not tune.Tuner.can_restore(str(sweep_dir)):
        raise SweepError(f"{sweep_dir} has no Ray Tune state to restore (tuner.pkl missing); remove the folder "
                         "and start the sweep anew")
    return tune.Tuner.restore(str(sweep_dir), trainable=_trainable(config, sweep_dir),
                              resume_unfinished=True, resume_errored=True)


def prepare(config: SweepConfig, resume: bool) -> SweepConfig:
    """Check the options against ``config.out``: a new sweep needs a free folder; ``resume`` takes the
    recorded command from its ``sweep.json`` (data, space, trials, scheduler) and keeps this run's
    ``address``, resources and ``stop_after``."""
    sweep_dir = Path(config.out)
    manifest = sweep_dir / MANIFEST
    if resume:
        if not manifest.exists():
            raise SweepError(f"{sweep_dir} holds no sweep to resume (no {MANIFEST}); start one without --resume")
        saved = SweepConfig.from_dict(json.loads(manifest.read_text()))
        if config.data and config.data != saved.data:
            raise SweepError(f"--data {config.data!r} differs from the sweep's {saved.data!r}; leave it out to resume")
        if config.space.source and config.space.params != saved.space.params:
            raise SweepError(f"--space {config.space.source} differs from the sweep's; leave it out to resume")
        return replace(saved, out=config.out, address=config.address, cpus_per_trial=config.cpus_per_trial,
                       gpus_per_trial=config.gpus_per_trial, num_cpus=config.num_cpus, stop_after=config.stop_after)
    if not config.data:
        raise SweepError("--data is required (a data SPEC, e.g. phantom:subjects=2,classes=40)")
    if manifest.exists() or (sweep_dir / "tuner.pkl").exists():
        raise SweepError(f"{sweep_dir} already holds a sweep; continue it with --resume or choose another --out")
    config.check()
    return config


@dataclass(frozen=True)
class SweepOutcome:
    """What :func:`run_sweep` returns: the summary rows, and the seconds Ray took to start and the
    Tuner to run (this session)."""

    rows: list[dict]
    ray_start_s: float
    fit_s: float


def run_sweep(config: SweepConfig, resume: bool = False, verbose: bool = False) -> SweepOutcome:
    """Run (or with ``resume`` continue) the sweep; write ``sweep.csv``/``sweep.md``.

    Steps: 1. check the options and the folder; 2. start or join Ray; 3. build or restore the Tuner;
    4. run it with the progress display; 5. summarise from the saved experiment state and run folders.
    """
    # 1. Check inputs before any work starts
    config = prepare(config, resume)
    sweep_dir = Path(config.out).resolve()

    # 2. Ray: local on loopback, or the cluster at --address
    t_ray = time.perf_counter()
    _start_ray(config, verbose)  # imports Ray (a one-line error when the [scale] extra is missing)
    ray_start_s = time.perf_counter() - t_ray
    import ray

    sweep_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_text(sweep_dir / MANIFEST, json.dumps(config.to_dict(), indent=1))

    try:
        # 3. A new Tuner, or the interrupted one from its folder
        tuner = _restored_tuner(config, sweep_dir) if resume else _tuner(config, sweep_dir)

        # 4. Run, with the display fed by ProgressCallback
        from offline_training.sweep.progress import ACTIVE, SweepProgress

        progress = SweepProgress(config.trials, config.space.metric, config.space.mode)
        if resume:  # the counts start from what the interrupted sessions finished
            progress.ended.update({r["trial_id"]: r["status"] for r in collect_rows(sweep_dir, config.space.metric)
                                   if r["status"] != "unfinished"})
        ACTIVE.update(progress=progress, stop_after=config.stop_after)
        cluster = config.address or f"local Ray ({int(ray.cluster_resources().get('CPU', 0))} CPUs, loopback)"
        print(f"sweep {sweep_dir}: {config.trials} trials ({config.configurations} configurations × "
              f"{config.space.grid_size} subject/seed pairs) on {cluster}, {config.scheduler}"
              f"{' (resumed)' if resume else ''}", flush=True)
        t0 = time.perf_counter()
        try:
            tuner.fit()
        finally:
            progress.close()
            ACTIVE.update(progress=None, stop_after=None)
        wall = time.perf_counter() - t0

        # 5. Summary from what Tune saved and what the trials wrote
        rows = collect_rows(sweep_dir, config.space.metric)
    finally:
        ray.shutdown()
    write_summary(rows, config, sweep_dir, wall)
    unfinished = sum(r["status"] == "unfinished" for r in rows)
    print(f"wrote {sweep_dir}/sweep.md, sweep.csv ({wall:.0f} s)")
    if unfinished:
        print(f"interrupted with {unfinished} trial(s) unfinished; continue with: "
              f"bci-train sweep --out {config.out} --resume")
    return SweepOutcome(rows, ray_start_s, wall)


def collect_rows(sweep_dir: Path, metric: str) -> list[dict]:
    """One row per trial from Tune's saved state (status, parameters) and the trial's run folder (history,
    test metrics)."""
    from ray.tune import ExperimentAnalysis

    rows = []
    for trial in sorted(ExperimentAnalysis(str(sweep_dir)).trials, key=lambda t: t.trial_id):
        params = {k: v for k, v in trial.config.items()}
        run_dir = sweep_dir / trial.trial_id
        state_path, metrics_path = run_dir / "train_state.json", run_dir / "metrics.json"
        history = json.loads(state_path.read_text())["history"] if state_path.exists() else []
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        if trial.status == "ERROR":
            status = "failed"
        elif trial.status == "TERMINATED":
            status = "done" if metrics else "stopped early"
        else:
            status = "unfinished"
        best = min(history, key=lambda h: h["val_loss"]) if history else {}
        rows.append({
            "trial_id": trial.trial_id, "status": status, "config_id": config_id(params),
            "subject": params.get("subject"), "seed": params.get("seed"), "epochs_run": len(history),
            "best_epoch": best.get("epoch"), "val_loss": best.get("val_loss", float("nan")),
            "val_top1": best.get("val_top1", float("nan")), "test_top1": metrics.get("top1", float("nan")),
            "test_top5": metrics.get("top5", float("nan")), "run_dir": trial.trial_id,
            "params": canonical_params({k: v for k, v in params.items() if k not in ("subject", "seed")}),
        })
    return rows


def write_summary(rows: list[dict], config: SweepConfig, sweep_dir: Path, wall_s: float | None = None) -> None:
    """``sweep.csv`` and ``sweep.md`` in ``sweep_dir``."""
    from offline_training.sweep.report import (  # scipy.stats: slow
        summary_markdown,
        write_csv,
    )
    write_csv(rows, sweep_dir / "sweep.csv")
    meta = {"dir": str(sweep_dir), "data": config.data, "split": config.space.split, "space": config.space.source,
            "configurations": config.configurations, "subjects": list(config.space.subjects),
            "seeds": list(config.space.seeds), "scheduler": config.scheduler, "metric": config.space.metric,
            "mode": config.space.mode, "wall_s": wall_s}
    write_text(sweep_dir / "sweep.md", summary_markdown(rows, meta))


def best_run(sweep_dir: str | Path) -> tuple[Path, dict]:
    """The run folder of a sweep's best finished trial of any student the live app runs (on the sweep's
    validation metric) and the ``sweep`` entry its card records: folder, trial, configuration, metric and value."""
    from offline_training.sweep.report import (  # scipy.stats: slow
        best_trial,
        read_csv,
    )
    sweep_dir = Path(sweep_dir).resolve()
    if not (sweep_dir / "sweep.csv").exists() or not (sweep_dir / MANIFEST).exists():
        raise SweepError(f"{sweep_dir} is not a sweep folder (no sweep.csv / {MANIFEST}); run `bci-train sweep` first")
    config = SweepConfig.from_dict(json.loads((sweep_dir / MANIFEST).read_text()))
    rows = read_csv(sweep_dir / "sweep.csv")
    metric = config.space.metric
    best = best_trial(rows, metric, students=tuple(STUDENTS))  # every registered student exports
    if best is None:
        raise SweepError(f"{sweep_dir}: no finished trial to export (see sweep.md; a sweep cut off early "
                         f"continues with `bci-train sweep --out {sweep_dir} --resume`)")
    sweep = {"dir": str(sweep_dir), "trial": best["trial_id"], "config_id": best["config_id"], "metric": metric,
             "value": best[metric], "subject": best["subject"], "seed": best["seed"], "trials": len(rows),
             "data": config.data}
    return sweep_dir / best["run_dir"], sweep


def config_from_args(args) -> SweepConfig:
    """A :class:`SweepConfig` from ``bci-train sweep``'s arguments (space file read and checked)."""
    space = load_space(args.space) if args.space else SweepSpace()
    if not args.resume and not args.space:
        raise SweepError("--space is required (a .yaml or .json space file, e.g. examples/sweep_small.yaml)")
    return SweepConfig(data=args.data or "", space=space, out=args.out, trials=args.trials, address=args.address,
                       cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, num_cpus=args.num_cpus,
                       scheduler=args.scheduler, grace_period=args.grace_period,
                       reduction_factor=args.reduction_factor, teacher=args.teacher, stop_after=args.stop_after)
