"""``bci-train sweep``: students, features and hyperparameters over subjects and seeds, on Ray Tune."""

from __future__ import annotations

import argparse

from offline_training.commands._common import add_command


def add_parser(sub) -> None:
    from offline_training.sweep.runner import SCHEDULERS, SweepConfig

    d = SweepConfig()
    p = add_command(sub, "sweep", help="students, features and hyperparameters over subjects and seeds, on Ray Tune")
    p.add_argument("--data", help="data SPEC, resolved on the Ray workers (its paths must exist there); "
                                  "not needed with --resume")
    p.add_argument("--space", help="search space, .yaml or .json (see examples/sweep_small.yaml); "
                                   "not needed with --resume")
    p.add_argument("--out", required=True, help="SWEEP_DIR: Ray Tune's experiment folder, one run folder per trial, "
                                                "sweep.md and sweep.csv (on storage every node sees)")
    p.add_argument("--trials", type=int, default=d.trials,
                   help="trials in all: sampled configurations x the space's subjects x seeds (a multiple of the grid; "
                        "default %(default)s)")
    p.add_argument("--address", default=d.address,
                   help="HOST:PORT of a running Ray cluster (`ray start --head` prints it); default: a local Ray "
                        "on this machine")
    p.add_argument("--cpus-per-trial", type=float, default=d.cpus_per_trial,
                   help="CPUs Ray reserves per trial (torch threads in the trial; default %(default)s)")
    p.add_argument("--gpus-per-trial", type=float, default=d.gpus_per_trial, help="GPUs Ray reserves per trial (> 0: each trial trains on its reserved GPU)")
    p.add_argument("--num-cpus", type=int, default=d.num_cpus, help="CPUs of a local Ray (default: all)")
    p.add_argument("--scheduler", choices=SCHEDULERS, default=d.scheduler,
                   help="asha stops trailing trials early; fifo runs every trial to its end")
    p.add_argument("--grace-period", type=int, default=d.grace_period, help="ASHA: epochs before the first cut")
    p.add_argument("--reduction-factor", type=float, default=d.reduction_factor,
                   help="ASHA: keep the best 1 in this many at each rung")
    p.add_argument("--teacher", default=d.teacher,
                   help="soft-label cache from `bci-train teacher` (the phantom brings its own)")
    p.add_argument("--stop-after", type=int, default=d.stop_after, metavar="N",
                   help="end this session once N trials have ended, as Ctrl-C would; --resume continues")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted sweep in --out (its data, space and trials come from sweep.json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from offline_training.sweep.runner import config_from_args, run_sweep

    run_sweep(config_from_args(args), resume=args.resume, verbose=args.verbose)
