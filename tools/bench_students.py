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
from offline_training.experiments.pipeline import (  # noqa: E402
    CompareConfig,
    compare,
    run_label,
    student_config,
    train_and_test,
)
from offline_training.experiments.stats import (  # noqa: E402
    comparison_header,
    describe_comparison,
    mcnemar,
    paired_differences,
)
from offline_training.students.registry import student_label  # noqa: E402
from offline_training.training.fit import TrainConfig  # noqa: E402

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


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    plan = CompareConfig()
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
    return parser


class _Runs:
    """Paired runs on the by-image split: one folder per student, KD, seed (and teacher tag), reused when
    it holds predictions already."""

    def __init__(self, trials, out: Path, config: TrainConfig, teacher: str):
        self.trials, self.out, self.config, self.teacher = trials, out, config, teacher

    def run(self, student: str, kd: bool, seed: int, soft=None, tag: str = "") -> Path:
        name = f"{student}{'_kd' if kd else ''}{tag}"
        folder = self.out / name if seed == self.config.seed and not tag else self.out / "seeds" / str(seed) / name
        if not (folder / "predictions.npz").exists():
            cfg = replace(student_config(self.config, student, kd), seed=seed)
            soft = (self.trials.soft_labels if soft is None else soft) if kd else None
            train_and_test(self.trials, "by-image", cfg, folder, soft, self.teacher if kd else "", progress=False)
        return folder


def _top1s(folders: list[Path]) -> list[float]:
    return [json.loads((f / "metrics.json").read_text())["top1"] for f in folders]


def _seed_comparisons(runs: _Runs, best_student: str, seeds: list[int]) -> tuple[dict, list[dict], list[str]]:
    """The headline comparisons over seeds: ``(runs by (student, kd), comparisons, report lines)``."""
    seed_runs = {key: [runs.run(*key, s) for s in seeds]
                 for key in {(best_student, True), (best_student, False), ("seed", True)}}
    pairs = [((best_student, True), ("seed", True)), ((best_student, True), (best_student, False))]
    lines = ["\n## Paired comparisons over seeds (by-image test split, the same trials for every run)\n",
             comparison_header()]
    comparisons = []
    for a, b in pairs:
        if a == b:
            continue
        mc, per = _paired(runs.trials, seed_runs[a], seed_runs[b])
        na, nb = run_label(*a), run_label(*b)
        comparisons.append({"a": na, "b": nb, "mcnemar": mc, "per_subject": per, "top1_a": _top1s(seed_runs[a]),
                            "top1_b": _top1s(seed_runs[b])})
        lines.append(describe_comparison(na, nb, seeds, mc, per))
    lines.append("\nTop-1 per seed: " + "; ".join(
        f"{c['a']}: {', '.join(f'{v:.3f}' for v in c['top1_a'])} vs {c['b']}: {', '.join(f'{v:.3f}' for v in c['top1_b'])}"
        for c in comparisons))
    return seed_runs, comparisons, lines


def _rho_table(runs: _Runs, phantom: Phantom, best_student: str, plain: list[Path], rhos: list[float],
               seeds: list[int]) -> tuple[list[dict], list[str]]:
    """KD gain against the teacher's alignment: ``(rows, report lines)`` (none without ``rhos``)."""
    if not rhos:
        return [], []
    best_label = student_label(best_student)
    lines = [f"\n## KD gain against the teacher's alignment ρ ({best_label}, {len(seeds)} seeds)\n",
             "| ρ (measured correlation of off-diagonal similarities) | top-1 with KD, mean over seeds | "
             "Δ top-1 vs no KD | 95 % CI (subjects) | p (paired t / sign-flip) | only KD / only no-KD right | "
             "p (McNemar) |", "|---|---|---|---|---|---|---|"]
    rows = []
    for rho in rhos:
        soft = phantom.soft_labels(runs.trials.labels, alignment=rho)
        folders = [runs.run(best_student, True, s, soft, tag=f"_rho{rho:g}") for s in seeds]
        mc, per = _paired(runs.trials, folders, plain)
        top = _top1s(folders)
        lo, hi = per["ci"]
        ci = f"[{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else "n/a"
        lines.append(f"| {rho:g} ({phantom.teacher_alignment_measured(rho):.2f}) | {np.mean(top):.3f} | "
                     f"{per['mean']:+.3f} | {ci} | {per['p_t']:.2g} / {per['p_perm']:.2g} | "
                     f"{mc['a_only']} / {mc['b_only']} | {mc['p']:.2g} |")
        rows.append({"rho": rho, "measured": phantom.teacher_alignment_measured(rho), "top1": top,
                     "mcnemar": mc, "per_subject": per})
    return rows, lines


def _continuous(out: Path, phantom: Phantom, best: str, seconds: float) -> tuple[dict | None, list[str]]:
    """The best run's continuous-mode accuracy on a live session: ``(figures, report lines)``."""
    if seconds <= 0:
        return None, []
    from offline_training.experiments.continuous import (
        ContinuousConfig,
        continuous_accuracy,
        continuous_markdown,
    )
    from offline_training.training.export import export_onnx

    path, _ = export_onnx(out, out / "model.onnx")
    subjects = tuple(sorted(phantom.subjects))[:2]
    continuous = continuous_accuracy(str(path), phantom.config, ContinuousConfig(seconds=seconds, subjects=subjects))
    return continuous, [f"\n## Continuous mode ({best}, live session, subjects {list(subjects)}, "
                        f"{seconds:g} s each, a decision every hop)\n", continuous_markdown(continuous)]


def main() -> int:
    args = build_parser().parse_args()
    kind, _, options = parse_spec(args.data)
    if kind != "phantom":
        sys.exit("this benchmark needs the phantom (its oracle is the ceiling); use `bci-train run` for other data")
    t0 = time.perf_counter()
    out = Path(args.out)
    trials = load_trials(args.data)
    phantom = Phantom(phantom_config(**options))
    config = replace(TrainConfig(), epochs=args.epochs, patience=args.patience, threads=args.threads)
    teacher = f"phantom class-similarity, alignment rho={phantom.config.teacher_alignment:g}"
    timings: dict[str, float] = {}

    # 1. the table (seed 0)
    rows = compare(trials, out, config, trials.soft_labels, teacher, oracle=phantom.oracle_probabilities,
                   progress=False, plan=CompareConfig(students=tuple(args.students), baselines=tuple(args.baselines),
                                                      controls=not args.no_controls)).rows
    timings["table"] = time.perf_counter() - t0
    result, table_report = json.loads((out / "comparison.json").read_text()), (out / "report.md").read_text()
    best_student, best_kd = result["best_folder"].removesuffix("_kd"), result["best_folder"].endswith("_kd")
    # 2. headline comparisons over seeds, 3. KD gain against the teacher's alignment, 4. continuous mode
    runs, t1 = _Runs(trials, out, config, teacher), time.perf_counter()
    seed_runs, comparisons, stats_lines = _seed_comparisons(runs, best_student, args.seeds)
    timings["seeds"], t2 = time.perf_counter() - t1, time.perf_counter()
    rho_rows, lines = _rho_table(runs, phantom, best_student, seed_runs[(best_student, False)], args.rhos, args.seeds)
    timings["rho"] = time.perf_counter() - t2
    continuous, more = _continuous(out, phantom, result["best"], args.continuous_seconds)
    stats_lines += lines + more

    wall = time.perf_counter() - t0
    stats_lines.append(f"\nWall time {wall / 60:.1f} min (table {timings['table'] / 60:.1f}, seeds {timings['seeds'] / 60:.1f}, "
                       f"rho {timings['rho'] / 60:.1f}) on {config.threads} threads.")
    report = "\n".join([table_report, *stats_lines]) + "\n"
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
