#!/usr/bin/env python
"""The students table on the phantom, with honest statistics; regenerates the README's table.

1. ``compare`` (seed 0): the seed CNN with and without KD, the new students (phase-aware STFT net,
   braindecode ShallowFBCSPNet with KD), braindecode baselines (EEGNet, ShallowFBCSPNet, Deep4Net, hard
   labels), the shrinkage-LDA reference, logistic regression on power, the phantom oracles (full and
   subject-agnostic), and the controls on the best student (by validation top-1): by block, leave one
   subject out, shuffled labels within the training split, drift probe. Same test trials for every row.
2. Headline comparisons over ``--seeds``: best student vs the seed CNN + KD, best student with vs
   without KD; paired per-subject differences (t interval, paired t and sign-flip p) and McNemar on the
   shared test trials pooled over seeds.
3. KD gain against the teacher's alignment ρ (``--rhos``): the best student with KD from a teacher of
   alignment ρ vs the same student without KD, over the seeds, with the same paired statistics.
4. Continuous-mode accuracy of the best student's exported model on a live session, by lag.

Prints the report and the wall time; writes OUT/report.md, OUT/bench.json and everything ``compare`` writes.

    python tools/bench_students.py --out runs/table       # standard phantom (6 x 40 x 50, 128 ch)
    python tools/bench_students.py --data phantom:subjects=2,classes=40,seed=7 --seeds 0 --rhos --no-controls --out runs/two
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bci_stream.sources.phantom import Phantom  # noqa: E402
from offline_training.datasets import load_trials, parse_spec  # noqa: E402
from offline_training.datasets.phantom import phantom_config  # noqa: E402
from offline_training.training.fit import TrainConfig  # noqa: E402
from offline_training.experiments.pipeline import (  # noqa: E402
    CompareConfig,
    compare,
    run_label,
    student_config,
    train_and_test,
)
from offline_training.students.registry import student_label  # noqa: E402
from offline_training.experiments.stats import comparison_header, describe_comparison, mcnemar, paired_differences  # noqa: E402

STANDARD = "phantom:subjects=6,classes=40,channels=128,images=50,seed=0"


def _predictions(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(folder / "predictions.npz")
    return data["test"], data["probabilities"].argmax(1) == data["labels"]


def _paired(trials, folders_a: list[Path], folders_b: list[Path]) -> tuple[dict, dict]:
    """McNemar pooled over seeds and per-subject differences (top-1 per subject, mean over seeds)."""
    a = [_predictions(f) for f in folders_a]
    b = [_predictions(f) for f in folders_b]
    for (ta, _), (tb, _) in zip(a, b):
        if not np.array_equal(ta, tb):
            raise RuntimeError("paired runs must share their test trials")
    mc = mcnemar(np.stack([c for _, c in a]), np.stack([c for _, c in b]))
    subjects = trials.subjects[a[0][0]]
    per_a = [np.mean([c[subjects == s].mean() for _, c in a]) for s in np.unique(subjects)]
    per_b = [np.mean([c[subjects == s].mean() for _, c in b]) for s in np.unique(subjects)]
    return mc, paired_differences(per_a, per_b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d, plan = TrainConfig(), CompareConfig()
    parser.add_argument("--data", default=STANDARD, help="a phantom data spec (default %(default)s)")
    parser.add_argument("--out", default="runs/table", help="output folder (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (default %(default)s)")
    parser.add_argument("--patience", type=int, default=6, help="early-stopping patience (default %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="seeds of the paired comparisons")
    parser.add_argument("--rhos", type=float, nargs="*", default=[0.0, 0.5, 1.0], help="teacher alignments for the KD-gain table")
    parser.add_argument("--students", nargs="*", default=list(plan.students), help="trained with the teacher")
    parser.add_argument("--baselines", nargs="*", default=list(plan.baselines), help="trained on hard labels")
    parser.add_argument("--no-controls", action="store_true", help="skip the controls")
    parser.add_argument("--continuous-seconds", type=float, default=30.0, help="live-session seconds per subject "
                        "for the continuous-mode accuracy (0: skip; default %(default)s)")
    args = parser.parse_args()
    kind, _, options = parse_spec(args.data)
    if kind != "phantom":
        sys.exit("this benchmark needs the phantom (its oracle is the ceiling); use `bci-train run` for other data")
    t0 = time.perf_counter()
    out = Path(args.out)
    trials = load_trials(args.data)
    phantom = Phantom(phantom_config(**options))
    oracle = phantom.oracle_probabilities
    config = replace(d, epochs=args.epochs, patience=args.patience, threads=args.threads)
    teacher = f"phantom class-similarity, alignment rho={phantom.config.teacher_alignment:g}"
    timings: dict[str, float] = {}

    # 1. the table (seed 0)
    rows = compare(trials, out, config, trials.soft_labels, teacher, oracle=oracle, progress=False,
                   plan=CompareConfig(students=tuple(args.students), baselines=tuple(args.baselines),
                                      controls=not args.no_controls)).rows
    timings["table"] = time.perf_counter() - t0
    result = json.loads((out / "comparison.json").read_text())
    best_folder = result["best_folder"]
    best_student = best_folder.removesuffix("_kd")
    best_kd = best_folder.endswith("_kd")
    lines = [(out / "report.md").read_text()]

    # 2. headline comparisons over seeds
    def run(student: str, kd: bool, seed: int, soft=None, tag: str = "") -> Path:
        name = f"{student}{'_kd' if kd else ''}{tag}"
        folder = out / name if seed == config.seed and not tag else out / "seeds" / str(seed) / name
        if not (folder / "predictions.npz").exists():
            cfg = replace(student_config(config, student, kd), seed=seed)
            train_and_test(trials, "by-image", cfg, folder, (trials.soft_labels if soft is None else soft) if kd else None,
                           teacher if kd else "", progress=False)
        return folder

    t1 = time.perf_counter()
    comparisons = []
    seed_runs = {}
    for student, kd in {(best_student, True), (best_student, False), ("seed", True)}:
        seed_runs[(student, kd)] = [run(student, kd, s) for s in args.seeds]
    best_label = student_label(best_student)
    pairs = [((best_student, True), ("seed", True)), ((best_student, True), (best_student, False))]
    stats_lines = ["\n## Paired comparisons over seeds (by-image test split, the same trials for every run)\n",
                   comparison_header()]
    for a, b in pairs:
        if a == b:
            continue
        mc, per = _paired(trials, seed_runs[a], seed_runs[b])
        na, nb = run_label(*a), run_label(*b)
        top = {k: [json.loads((f / 'metrics.json').read_text())['top1'] for f in seed_runs[k]] for k in (a, b)}
        comparisons.append({"a": na, "b": nb, "mcnemar": mc, "per_subject": per, "top1_a": top[a], "top1_b": top[b]})
        stats_lines.append(describe_comparison(na, nb, args.seeds, mc, per))
    stats_lines.append("\nTop-1 per seed: " + "; ".join(
        f"{c['a']}: {', '.join(f'{v:.3f}' for v in c['top1_a'])} vs {c['b']}: {', '.join(f'{v:.3f}' for v in c['top1_b'])}"
        for c in comparisons))
    timings["seeds"] = time.perf_counter() - t1

    # 3. KD gain against the teacher's alignment
    t2 = time.perf_counter()
    rho_rows = []
    if args.rhos:
        stats_lines += [f"\n## KD gain against the teacher's alignment ρ ({best_label}, {len(args.seeds)} seeds)\n",
                        "| ρ (measured correlation of off-diagonal similarities) | top-1 with KD, mean over seeds | "
                        "Δ top-1 vs no KD | 95 % CI (subjects) | p (paired t / sign-flip) | only KD / only no-KD right | "
                        "p (McNemar) |", "|---|---|---|---|---|---|---|"]
        plain = seed_runs[(best_student, False)]
        for rho in args.rhos:
            soft = phantom.soft_labels(trials.labels, alignment=rho)
            folders = [run(best_student, True, s, soft, tag=f"_rho{rho:g}") for s in args.seeds]
            mc, per = _paired(trials, folders, plain)
            top = [json.loads((f / "metrics.json").read_text())["top1"] for f in folders]
            lo, hi = per["ci"]
            ci = f"[{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else "n/a"
            stats_lines.append(f"| {rho:g} ({phantom.teacher_alignment_measured(rho):.2f}) | {np.mean(top):.3f} | "
                               f"{per['mean']:+.3f} | {ci} | {per['p_t']:.2g} / {per['p_perm']:.2g} | "
                               f"{mc['a_only']} / {mc['b_only']} | {mc['p']:.2g} |")
            rho_rows.append({"rho": rho, "measured": phantom.teacher_alignment_measured(rho), "top1": top,
                             "mcnemar": mc, "per_subject": per})
    timings["rho"] = time.perf_counter() - t2

    # 4. continuous mode
    continuous = None
    if args.continuous_seconds > 0:
        from offline_training.experiments.continuous import ContinuousConfig, continuous_accuracy, continuous_markdown
        from offline_training.training.export import export_onnx

        path, _ = export_onnx(out, out / "model.onnx")
        subjects = tuple(sorted(phantom.subjects))[:2]
        continuous = continuous_accuracy(str(path), phantom.config, ContinuousConfig(seconds=args.continuous_seconds,
                                                                                     subjects=subjects))
        stats_lines += [f"\n## Continuous mode ({result['best']}, live session, subjects {list(subjects)}, "
                        f"{args.continuous_seconds:g} s each, a decision every hop)\n", continuous_markdown(continuous)]

    wall = time.perf_counter() - t0
    stats_lines.append(f"\nWall time {wall / 60:.1f} min (table {timings['table'] / 60:.1f}, seeds {timings['seeds'] / 60:.1f}, "
                       f"rho {timings['rho'] / 60:.1f}) on {config.threads} threads.")
    report = "\n".join(lines + stats_lines) + "\n"
    (out / "report.md").write_text(report)
    (out / "bench.json").write_text(json.dumps({"data": args.data, "best": result["best"], "best_kd": best_kd,
                                                "comparisons": comparisons, "rho": rho_rows, "continuous": continuous,
                                                "wall_seconds": wall, "timings": timings}, indent=1, default=float))
    print(report)
    for name, m in rows:
        if "train_seconds" in m:
            print(f"  {name}: trained in {m['train_seconds']:.0f} s")
    print(f"total wall time {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
