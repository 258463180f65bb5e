"""Session adaptation without labels on the real sets: what re-centring a new session on its own first
trials gains, with paired statistics, and where it hurts.

Each test session (SSVEP Exo: leave one session out, and leave one subject out with no labelled
calibration; the Muse sets: leave one recording out) is decoded four ways by the same trained model:
with the training statistics ("none"), and re-centred on a buffer of ``--buffer`` of its trials whose
labels are never read: its first trials in time ("first trials": what a lab gets; SSVEP Exo sessions
begin with 8 rest trials), the first trials of each class in equal numbers ("balanced": a calibration
block that shows every stimulus), or the first trials of one class ("one class": pyRiemann #490's
hazard). All four are scored on the same trials: the test session without any of the buffers.

Two methods per set: the student that bench_real.py found best for it (features re-centred per channel x
row, :class:`bci_stream.contract.adaptation.FeatureRecentring`: what ``bci-stream live --adapt recentre``
runs) and the field's covariance pipeline (pyRiemann tangent space + logistic regression, covariances
re-centred at the identity, :class:`bci_stream.contract.adaptation.RiemannRecentring`; Zanini et al. 2018).

    PYTHONPATH=$PWD python tools/bench_adaptation.py [--setups ssvep ssvep/cross-subject n170 p300] [--buffer 0.25]

Writes ``docs/benchmarks/adaptation.json``, ``docs/adaptation.png`` and the adaptation section of
``docs/real-sessions.md``; prints the table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from bench_real import REAL, SETS, load  # noqa: E402  (the same sets, read the same way)

# setup -> (set, protocol, student, covariance pipeline)
SETUPS = {
    "ssvep": ("ssvep", "cross-session", "ccanet", "fbcov+ts+lr"),
    "ssvep/cross-subject": ("ssvep", "cross-subject", "ccanet", "fbcov+ts+lr"),
    "n170": ("n170", "cross-session", "eegnet", "xdawn+ts+lr"),
    "p300": ("p300", "cross-session", "eegnet", "xdawn+ts+lr"),
}
GAINS = " + channel gains"  # the setups' key suffix for the injected-gain condition
VARIANTS = ("none", "first trials", "balanced", "one class")


def folds_of(trials, protocol: str, group: str) -> list:
    """Leave one session / recording / subject out; cross-subject with no labelled calibration."""
    from offline_training.experiments.protocols import make_folds

    if protocol == "cross-subject":
        return make_folds(trials, protocol, calibration=0.0)
    return make_folds(trials, protocol, group=group)


def buffers(test: np.ndarray, groups: np.ndarray, labels: np.ndarray, fraction: float) -> dict[str, np.ndarray]:
    """Positions in ``test`` (time order) of each test session's re-centring buffer, ``fraction`` of its trials
    (at least 4), per variant: "first trials" (its first trials, whatever they are: what a lab gets),
    "balanced" (the first trials of each class in equal numbers, at most half of a class's: a calibration
    block that shows every stimulus; the re-centring still reads no label) and "one class" (the first trials of its most frequent
    class)."""
    out: dict[str, list] = {v: [] for v in VARIANTS[1:]}
    for g in np.unique(groups[test]):
        pos = np.flatnonzero(groups[test] == g)
        n = max(4, int(round(fraction * len(pos))))
        y = labels[test[pos]]
        classes = np.unique(y)
        out["first trials"].append(pos[:n])
        per_class = [min(max(1, n // len(classes)), (y == c).sum() // 2) for c in classes]  # half of a rare class at most
        out["balanced"].append(np.sort(np.concatenate([pos[y == c][:k] for c, k in zip(classes, per_class)])))
        out["one class"].append(pos[y == np.bincount(y).argmax()][:n])
    return {v: np.concatenate(b) for v, b in out.items()}


def per_group(z: np.ndarray, test: np.ndarray, groups: np.ndarray, buffer: np.ndarray, adapt) -> np.ndarray:
    """Each test session's inputs re-centred on its own part of ``buffer`` (positions in ``test``):
    ``adapt(z_session, buffer_positions_in_session)``."""
    out = np.empty_like(z)
    for g in np.unique(groups[test]):
        pos = np.flatnonzero(groups[test] == g)
        out[pos] = adapt(z[pos], np.flatnonzero(np.isin(pos, buffer)))
    return out


def student_variants(name: str, trials, fold, groups, bufs, fit_cache: dict, test_trials=None) -> dict:
    """The student's probabilities on the fold's test trials (read from ``test_trials``, default
    ``trials``: the injected-gain condition), per variant."""
    from bci_stream.contract.adaptation import recentred
    from offline_training.experiments.real_eval import (
        StudentFit,
        fit_student,
        student_inputs,
        student_probabilities,
    )
    from offline_training.training.splits import clean_training

    if "x" not in fit_cache:
        fit_cache["x"], fit_cache["rate"] = student_inputs(name, trials, (0, trials.eeg.shape[-1]))
    if "x_test" not in fit_cache:
        fit_cache["x_test"] = fit_cache["x"] if test_trials is None else student_inputs(
            name, test_trials, (0, trials.eeg.shape[-1]))[0]
    x, rate = fit_cache["x"], fit_cache["rate"]
    train = clean_training(trials.eeg, trials.labels, fold.train, fit_cache["reject"])
    model, mean, std = fit_student(name, x[train], trials.labels[train], trials.n_classes, rate, StudentFit())
    z = ((fit_cache["x_test"][fold.test] - mean) / std).astype(np.float32)
    zero, one = np.zeros_like(mean), np.ones_like(std)
    out = {"none": student_probabilities(model, zero, one, z)}
    for variant, buffer in bufs.items():
        out[variant] = student_probabilities(model, zero, one, per_group(z, fold.test, groups, buffer, recentred))
    return out


def split_at_tangent_space(pipeline):
    """A pyRiemann pipeline cut before its TangentSpace: ``(covariance front, tangent space + classifier)``."""
    from pyriemann.tangentspace import TangentSpace
    from sklearn.pipeline import Pipeline, make_pipeline

    flat = []
    for _, step in pipeline.steps:
        flat += [s for _, s in step.steps] if isinstance(step, Pipeline) else [step]
    i = next(i for i, s in enumerate(flat) if isinstance(s, TangentSpace))
    return make_pipeline(*flat[:i]), make_pipeline(*flat[i:])


def reference_variants(name: str, trials, fold, groups, bufs, reject: float | None, test_trials=None) -> dict:
    """The covariance pipeline's probabilities on the fold's test trials (read from ``test_trials``,
    default ``trials``), per variant (the Riemannian re-centring of the covariances of each session)."""
    from sklearn.base import clone

    from bci_stream.contract.adaptation import RiemannRecentring
    from offline_training.experiments.references import build_reference, reference_probabilities
    from offline_training.training.splits import clean_training

    train = clean_training(trials.eeg, trials.labels, fold.train, reject)
    front, back = split_at_tangent_space(build_reference(name, trials.sfreq, trials.class_names))
    covs_train = front.fit_transform(trials.eeg[train].astype(np.float64), trials.labels[train])
    plain, adapted = clone(back).fit(covs_train, trials.labels[train]), clone(back)
    adapted.fit(RiemannRecentring().fit_transform(covs_train), trials.labels[train])
    covs = (trials if test_trials is None else test_trials).eeg[fold.test].astype(np.float64)
    for _, step in front.steps:  # step by step: the stateless filter-bank steps look unfitted to Pipeline.transform
        covs = step.transform(covs)
    out = {"none": reference_probabilities(plain, covs, trials.n_classes)}

    def recentre(c, buffer):
        return RiemannRecentring().set_reference(c[buffer]).transform(c)

    for variant, buffer in bufs.items():
        out[variant] = reference_probabilities(adapted, per_group(covs, fold.test, groups, buffer, recentre), trials.n_classes)
    return out


def with_channel_gains(trials, groups: np.ndarray, seed: int = 0, low: float = 0.5, high: float = 2.0):
    """A copy of ``trials`` whose every session (subject x ``groups`` value) has its own per-channel gain,
    log-uniform in [``low``, ``high``] (another day's electrode impedances and amplifier): the shift a new
    session brings, injected where the recordings (same-day sessions) bring little."""
    from dataclasses import replace

    rng = np.random.default_rng(seed)
    eeg = np.array(trials.eeg, np.float32, copy=True)
    for s in np.unique(trials.subjects):
        for g in np.unique(groups[trials.subjects == s]):
            m = (trials.subjects == s) & (groups == g)
            eeg[m] *= np.exp(rng.uniform(np.log(low), np.log(high), eeg.shape[1]))[:, None].astype(np.float32)
    return replace(trials, eeg=eeg)


def fold_scores(probs: dict, labels: np.ndarray, keep: np.ndarray, metric: str) -> dict:
    from offline_training.experiments.real_eval import subject_scores

    return {v: subject_scores(p[keep], labels[keep])[metric] for v, p in probs.items()}


def bench(setup: str, trials, fraction: float, gains: bool = False) -> dict:
    """Every fold of one setup: per unit (subject, or recording where there is one subject) each method's
    metric per variant, and the paired differences to "none"."""
    from offline_training.experiments.stats import paired_differences

    set_name, protocol, student, reference = SETUPS[setup]
    title, _, _, kw, metric, reject = SETS[set_name]
    groups = trials.runs if kw["group"] == "run" else trials.sessions
    folds = folds_of(trials, protocol, kw["group"])
    test_trials = with_channel_gains(trials, groups) if gains else None
    units: dict = {}
    skipped: list[str] = []
    cache = {"reject": reject}
    t0 = time.perf_counter()
    for k, fold in enumerate(folds):
        bufs = buffers(fold.test, groups, trials.labels, fraction)
        keep = np.setdiff1d(np.arange(len(fold.test)), np.concatenate(list(bufs.values())))
        labels = trials.labels[fold.test]
        scores = {student: fold_scores(student_variants(student, trials, fold, groups, bufs, cache, test_trials),
                                       labels, keep, metric),
                  reference: fold_scores(reference_variants(reference, trials, fold, groups, bufs, reject, test_trials),
                                         labels, keep, metric)}
        if not all(np.isfinite(v) for sc in scores.values() for v in sc.values()):
            skipped.append(f"{fold.name}: {len(keep)} scored trials hold one class (no {metric})")
            continue
        unit = fold.name if len(np.unique(trials.subjects)) == 1 else f"subject {fold.subject}"
        units.setdefault(unit, []).append(scores)
        print(f"{setup} fold {k + 1}/{len(folds)} ({fold.name}): " + "; ".join(
            f"{m} " + " ".join(f"{v} {s:.3f}" for v, s in sc.items()) for m, sc in scores.items())
              + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    methods = {}
    for method in (student, reference):
        per_unit = {u: {v: float(np.mean([f[method][v] for f in fs])) for v in VARIANTS} for u, fs in units.items()}
        names = sorted(per_unit)
        methods[method] = {
            "kind": "student" if method == student else "covariance pipeline",
            "per_unit": per_unit,
            "mean": {v: float(np.mean([per_unit[u][v] for u in names])) for v in VARIANTS},
            "vs_none": {v: paired_differences([per_unit[u][v] for u in names], [per_unit[u]["none"] for u in names])
                        for v in VARIANTS[1:]}}
    return {"title": title, "protocol": protocol, "metric": metric, "buffer": fraction, "summary": trials.summary(),
            "condition": "test sessions with injected per-channel gains x0.5-2" if gains else "as recorded",
            "unit": "recording" if len(np.unique(trials.subjects)) == 1 else "subject", "methods": methods,
            "skipped_folds": skipped,
            "seconds": round(time.perf_counter() - t0, 1)}


def _diff(d: dict) -> str:
    if d["n"] < 2 or not np.isfinite(d["ci"][0]):
        return f"{d['mean']:+.3f} (n={d['n']})"
    return f"{d['mean']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}], p {d['p_t']:.2g} / {d['p_perm']:.2g}"


def markdown(results: dict) -> str:
    head = " | ".join(f"Δ {v} − none [95 % CI], p (t / sign-flip)" for v in VARIANTS[1:])
    lines = [f"| set, protocol, test sessions | method | none | {head} | paired over |",
             "|---|---|---|" + "---|" * len(VARIANTS[1:]) + "---|"]
    for res in results.values():
        mname = "top-1" if res["metric"] == "top1" else "AUC"
        for method, row in res["methods"].items():
            diffs = " | ".join(_diff(row["vs_none"][v]) for v in VARIANTS[1:])
            cond = "as recorded" if res.get("condition", "as recorded") == "as recorded" else "channel gains x0.5-2"
            lines.append(f"| {res['title'].split(',')[0]}, {res['protocol']}, {cond} | {method} ({row['kind']}) | {mname} "
                         f"{row['mean']['none']:.3f} | {diffs} | {len(row['per_unit'])} {res['unit']}s |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f"{setup}: {method}", row) for setup, res in results.items() for method, row in res["methods"].items()]
    fig, ax = plt.subplots(figsize=(9.5, 0.75 * len(rows) + 1.6))
    for y, (_, row) in enumerate(rows):
        for j, (variant, color) in enumerate(zip(VARIANTS[1:], ("C0", "C2", "C3"))):
            d, yy = row["vs_none"][variant], y + 0.2 * (j - 1)
            ax.scatter(d["diffs"], np.full(len(d["diffs"]), yy), s=10, color=color, alpha=0.45)
            if np.isfinite(d["ci"][0]):
                ax.plot(d["ci"], [yy, yy], color=color, linewidth=2)
            ax.plot([d["mean"]], [yy], marker="|", markersize=12, color=color, label=f"{variant} buffer" if y == 0 else None)
    ax.axvline(0, color="k", linewidth=1)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Δ vs no adaptation (top-1 for SSVEP, ROC AUC for the Muse sets); dots: subjects or recordings; "
                  "line: 95 % CI", fontsize=8)
    ax.set_title("Label-free session re-centring on real EEG, by what the buffer holds", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_section(text: str, page: Path) -> None:
    begin, end = "<!-- adaptation:begin -->", "<!-- adaptation:end -->"
    doc = page.read_text()
    doc = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: f"{begin}\n{text}\n{end}", doc, flags=re.S)
    page.write_text(doc)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    p.add_argument("--buffer", type=float, default=0.25,
                   help="fraction of each test session's first trials that re-centres it (labels unread; MOABB's "
                        "calibration slice is 25 %%)")
    p.add_argument("--no-gains", dest="gains", action="store_false",
                   help="skip the condition with injected per-channel gains on the test sessions")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "adaptation.json"))
    p.add_argument("--no-docs", action="store_true", help="leave docs/real-sessions.md and the PNG alone")
    args = p.parse_args()
    if not REAL.is_dir():
        raise SystemExit(f"no real data at {REAL}: see ../shared/data/real/README.md")
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    loaded: dict = {}
    for setup in args.setups:
        name = SETUPS[setup][0]
        if name not in loaded:
            loaded[name] = load(name)
        for gains in (False, True) if args.gains else (False,):
            results[setup + (GAINS if gains else "")] = bench(setup, loaded[name], args.buffer, gains)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1))
    ordered = {k + g: results[k + g] for k in SETUPS for g in ("", GAINS) if k + g in results}
    table = markdown(ordered)
    if not args.no_docs:
        plot(ordered, ROOT / "docs" / "adaptation.png")
        write_section(table, ROOT / "docs" / "real-sessions.md")
    print(table)


if __name__ == "__main__":
    main()
