"""Ray's cost per trial: N tiny trials through ``bci-train sweep``'s Ray path vs the same trials one after
another in one process, on this machine, in this run.

Three passes over the same N trials (one configuration, seeds 0..N-1, FIFO, 1 torch thread each):

1. ``sequential``: :func:`offline_training.sweep.runner.fit_trial` in a loop, no Ray;
2. ``ray-1cpu``: a local Ray with 1 CPU, so trials also run one at a time: the difference to (1),
   divided by N, is Ray's overhead per trial (actor start/reuse, reporting every epoch, Tune's
   bookkeeping and experiment-state files);
3. ``ray-Ncpu``: a local Ray with ``--cpus`` CPUs, trials side by side: the ratio to (1) is what a
   user of this machine gains.

Ray's own start and shutdown are timed apart (once per sweep). Prints the figures and writes JSON.

    python tools/bench_sweep.py --trials 8 --epochs 2 --out bench_sweep.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from offline_training.sweep.runner import SweepConfig, TrialContext, cached_trials, fit_trial, run_sweep
from offline_training.sweep.space import SweepSpace

DATA = "phantom:subjects=1,classes=5,channels=16,images=10,seed=3,evoked_uv=30.0"


def space_for(trials: int, epochs: int) -> SweepSpace:
    """One configuration on seeds 0..trials-1: the same N trials on every pass."""
    return SweepSpace.from_dict({"seed": 0, "subjects": [1], "seeds": list(range(trials)),
                                 "params": {"epochs": epochs, "lr": 2e-3, "width": 16, "n_spatial": 16}},
                                source="bench_sweep")


def sequential(space: SweepSpace, root: Path) -> float:
    """Seconds for the trials one after another in this process (the data loaded once, as a reused
    Ray worker has it)."""
    context = TrialContext(data=DATA, split=space.split, sweep_dir=str(root), metric=space.metric, threads=1)
    cached_trials(DATA)
    t0 = time.perf_counter()
    for seed in space.seeds:
        fit_trial({**space.params, "subject": 1, "seed": seed}, context, f"seq_{seed}")
    return time.perf_counter() - t0


def with_ray(space: SweepSpace, root: Path, cpus: int, name: str) -> dict:
    """One sweep on a local Ray with ``cpus`` CPUs: Ray's start and the Tuner's run, in seconds."""
    config = SweepConfig(data=DATA, space=space, out=str(root / name), trials=len(space.seeds), num_cpus=cpus,
                         scheduler="fifo")
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        outcome = run_sweep(config)
    total = time.perf_counter() - t0
    assert all(r["status"] == "done" for r in outcome.rows), outcome.rows
    return {"ray_start_s": outcome.ray_start_s, "fit_s": outcome.fit_s,
            "start_fit_shutdown_s": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8, help="trials per pass")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per trial")
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the parallel Ray pass")
    parser.add_argument("--out", default="bench_sweep.json", help="JSON results file")
    args = parser.parse_args()

    space = space_for(args.trials, args.epochs)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        root = Path(tmp)
        seq = sequential(space, root / "sequential")
        one = with_ray(space, root, 1, "ray1")
        many = with_ray(space, root, args.cpus, f"ray{args.cpus}")
    n = args.trials
    result = {
        "trials": n, "epochs": args.epochs, "data": DATA, "cpus": args.cpus, "machine": platform.processor() or
        platform.machine(), "logical_cpus": os.cpu_count(),
        "sequential_s": seq, "ray_1cpu": one, f"ray_{args.cpus}cpu": many,
        "overhead_per_trial_s": (one["fit_s"] - seq) / n,
        "ratio_1cpu": one["fit_s"] / seq, f"ratio_{args.cpus}cpu": many["fit_s"] / seq,
        f"ratio_{args.cpus}cpu_with_start": many["start_fit_shutdown_s"] / seq,
    }
    print(f"{n} trials x {args.epochs} epochs ({DATA}), 1 torch thread per trial")
    print(f"  one process, one after another : {seq:6.1f} s  ({seq / n:.2f} s per trial)")
    print(f"  Ray, 1 CPU (one at a time)     : {one['fit_s']:6.1f} s  ratio {result['ratio_1cpu']:.2f}; "
          f"overhead {result['overhead_per_trial_s']:+.2f} s per trial")
    print(f"  Ray, {args.cpus} CPUs (side by side)    : {many['fit_s']:6.1f} s  ratio "
          f"{result[f'ratio_{args.cpus}cpu']:.2f} ({result[f'ratio_{args.cpus}cpu_with_start']:.2f} with Ray's "
          f"start and shutdown, {many['start_fit_shutdown_s'] - many['fit_s']:.1f} s)")
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
