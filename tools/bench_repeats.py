"""Evidence accumulation on real recordings: accuracy, ROC AUC and information-transfer rate against the
number of repeats combined, on the Muse visual P300 and faces-vs-houses (N170) recordings of
``../shared/data/real``. Writes ``docs/benchmarks/accumulation.json`` and ``docs/accumulation.png``.

    PYTHONPATH=$PWD python tools/bench_repeats.py [--sets p300 n170] [--methods lda xdawn+ts+lr] [--max-k 10]

Protocol: leave-one-recording-out per subject (the project's ``cross-session`` with ``group="run"``, as
``tools/bench_real.py``), the ERP recipe of ``bench_real`` (0.5-20 Hz causal band-pass, 0-0.6 s, training
epochs over 100 uV peak-to-peak left out of training, every test trial scored). Each method's
out-of-fold probabilities go through the live stage itself (:class:`bci_stream.live.accumulate.Accumulator`,
``max_repeats=k``, the training fold's class prior divided out): in each held-out recording, the trials of
one stimulus class, in presentation order, are combined ``k`` at a time (disjoint groups), and each group's
final decision is scored. ITR: Wolpaw's bits per decision with P = balanced accuracy and N = 2, times
decisions per minute = 60 / (k x the recordings' median stimulus interval), i.e. the repeats of one
stimulus presented back to back at the recording's rate.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "docs" / "benchmarks" / "accumulation.json"
OUT_PNG = ROOT / "docs" / "accumulation.png"


def _bench_real():
    """``tools/bench_real.py`` as a module (its data sets, ERP recipe and folds: one home)."""
    spec = importlib.util.spec_from_file_location("bench_real", ROOT / "tools" / "bench_real.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wolpaw_bits(p: float, n: int = 2) -> float:
    """Bits per decision (Wolpaw et al. 2000) for accuracy ``p`` over ``n`` classes (0 at or below chance)."""
    if p <= 1.0 / n:
        return 0.0
    if p >= 1.0:
        return math.log2(n)
    return math.log2(n) + p * math.log2(p) + (1 - p) * math.log2((1 - p) / (n - 1))


def stimulus_interval(name: str) -> float:
    """Median seconds between consecutive stimuli in the set's recordings (the real trial rate)."""
    from bci_stream.io import read_recording

    br = _bench_real()
    folder = br.REAL / "eegnb_muse" / ("P300" if name == "p300" else "N170") / "subject1"
    steps = []
    for path in sorted(folder.rglob("*.csv")):
        rec = read_recording(path)
        onsets = np.array([s for s, _ in rec.events]) / rec.sfreq
        steps += list(np.diff(onsets))
    return float(np.median(steps))


def accumulate(probs: np.ndarray, labels: np.ndarray, runs: np.ndarray, priors: np.ndarray, k: int,
               class_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Final decisions of groups of ``k`` same-class trials (per held-out recording, in order) through the live
    stage: ``(posteriors (n_groups, n_classes), truths (n_groups,))``."""
    from bci_stream.live.accumulate import AccumulateConfig, Accumulator
    from bci_stream.live.prediction import Prediction

    out, truths = [], []
    for run in np.unique(runs):
        idx = np.flatnonzero(runs == run)
        prior = tuple(float(v) for v in priors[idx[0]])
        stage = Accumulator(AccumulateConfig(enabled=True, max_repeats=k, prior=prior), probs.shape[1])
        for i in idx:  # presentation order; the marker is the class shown (the group key)
            p = Prediction(t_lsl=float(i), t_emitted=float(i), probabilities=probs[i], top5=[int(probs[i].argmax())],
                           window_end_sample=int(i), latency_ms=0.0, marker=class_names[labels[i]])
            q = stage(p)
            if q.extra["final"]:
                out.append(q.probabilities)
                truths.append(labels[i])
    return np.array(out), np.array(truths)


def scores(post: np.ndarray, truth: np.ndarray) -> dict:
    from sklearn.metrics import balanced_accuracy_score

    from bci_stream.live.stats import roc_auc_interval, wilson_interval

    pred = post.argmax(1)
    hits, n = int((pred == truth).sum()), len(truth)
    out = {"n_decisions": n, "per_class": [int((truth == c).sum()) for c in range(post.shape[1])],
           "accuracy": hits / n, "accuracy_ci": list(wilson_interval(hits, n)),
           "balanced_accuracy": float(balanced_accuracy_score(truth, pred))}
    if len(set(truth.tolist())) == 2:
        auc, lo, hi = roc_auc_interval(truth, post[:, 1])
        out.update(auc=auc, auc_ci=[lo, hi])
    return out


def bench(name: str, methods: list[str], max_k: int) -> dict:
    from offline_training.experiments.real_eval import run_folds

    br = _bench_real()
    title, spec, band, kw, _, reject = br.SETS[name]
    trials = br.load(name)
    folds = br.protocol_folds(trials, "cross-session", kw["group"])
    interval = stimulus_interval(name)
    priors = np.zeros((len(trials), trials.n_classes))
    for fold in folds:  # the prior the fold's model learnt: its training labels' frequencies
        priors[fold.test] = np.bincount(trials.labels[fold.train], minlength=trials.n_classes) / len(fold.train)
    result = {"title": title, "spec": spec, "bandpass": band, "reject_uv": reject,
              "protocol": br.PROTOCOL_NAME[kw["group"]], "summary": trials.summary(),
              "stimulus_interval_s": round(interval, 4), "methods": {}}
    for method in methods:
        t0 = time.perf_counter()
        probs = run_folds(method, "reference", trials, folds, (0, trials.eeg.shape[-1]), reject=reject)["probabilities"]
        rows = []
        for k in range(1, max_k + 1):
            post, truth = accumulate(probs, trials.labels, trials.runs, priors, k, trials.class_names)
            row = {"k": k, **scores(post, truth)}
            bits = wolpaw_bits(row["balanced_accuracy"], trials.n_classes)
            row["bits_per_decision"] = round(bits, 4)
            row["itr_bits_per_min"] = round(bits * 60.0 / (k * interval), 3)
            rows.append(row)
            print(f"{name} {method} k={k}: acc {row['accuracy']:.3f} bal {row['balanced_accuracy']:.3f} "
                  f"AUC {row.get('auc', float('nan')):.3f} ITR {row['itr_bits_per_min']:.2f} bits/min "
                  f"({row['n_decisions']} decisions)", flush=True)
        result["methods"][method] = {"rows": rows, "seconds": round(time.perf_counter() - t0, 1)}
    return result


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(5.5 * len(results), 7), squeeze=False)
    for col, (name, res) in enumerate(results.items()):
        ax, ax2 = axes[0, col], axes[1, col]
        for method, m in res["methods"].items():
            ks = [r["k"] for r in m["rows"]]
            auc = np.array([r["auc"] for r in m["rows"]])
            ci = np.array([r["auc_ci"] for r in m["rows"]])
            ax.plot(ks, auc, "o-", label=f"{method} ROC AUC")
            ax.fill_between(ks, ci[:, 0], ci[:, 1], alpha=0.2)
            ax.plot(ks, [r["balanced_accuracy"] for r in m["rows"]], "s--", label=f"{method} balanced acc.")
            ax2.plot(ks, [r["itr_bits_per_min"] for r in m["rows"]], "o-", label=method)
        ax.axhline(0.5, color="grey", lw=0.8)
        ax.set_title(f"{res['title'].split(',')[0]} ({name}), leave-one-recording-out", fontsize=9)
        ax.set_xlabel("repeats combined (k)")
        ax.set_ylim(0.4, 1.0)
        ax.legend(fontsize=7)
        ax2.set_xlabel("repeats combined (k)")
        ax2.set_ylabel("ITR, bits/min (Wolpaw)")
        ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=["p300", "n170"], choices=["p300", "n170"])
    ap.add_argument("--methods", nargs="+", default=["lda", "xdawn+ts+lr"])
    ap.add_argument("--max-k", type=int, default=10)
    args = ap.parse_args()
    br = _bench_real()
    if not br.REAL.is_dir():
        print(f"the real data sets are not at {br.REAL}")
        return 1
    results = {name: bench(name, args.methods, args.max_k) for name in args.sets}
    OUT_JSON.write_text(json.dumps({"command": "PYTHONPATH=$PWD python tools/bench_repeats.py", "results": results},
                                   indent=1))
    plot(results, OUT_PNG)
    print(f"wrote {OUT_JSON.relative_to(ROOT)} and {OUT_PNG.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
