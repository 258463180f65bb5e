"""MOABB's evaluations on the local SSVEP Exo files: a student and MOABB's / pyRiemann's pipelines in
``CrossSessionEvaluation`` (leave one session out, per subject), beside the same estimators on the same
folds fitted here (the project's protocol): the two columns must agree.

    python tools/bench_moabb.py [--root ../shared/data/real/ssvep_exo] [--epochs 30] [--out docs/benchmarks/moabb_ssvep.json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "ssvep_exo"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=str(ROOT))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--out", default="docs/benchmarks/moabb_ssvep.json")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    from moabb.evaluations import CrossSessionEvaluation
    from moabb.paradigms import SSVEP
    from pyriemann.classification import MDM
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import LabelEncoder

    from bci_stream.live.stats import wilson_interval
    from offline_training.datasets.moabb import LocalSSVEPExo
    from offline_training.estimators import StudentClassifier

    dataset, paradigm = LocalSSVEPExo(args.root), SSVEP(n_classes=4)
    pipelines = {"Cov+MDM (pyRiemann)": make_pipeline(Covariances("oas"), MDM()),
                 "Cov+TS+LR (MOABB SSVEP pipeline)": make_pipeline(Covariances("oas"), TangentSpace(), LogisticRegression(max_iter=1000)),
                 "ShallowFBCSPNet student": make_pipeline(StudentClassifier("shallow", sfreq=256, epochs=args.epochs, threads=2))}
    t0 = time.perf_counter()
    results = CrossSessionEvaluation(paradigm=paradigm, datasets=[dataset], overwrite=True, save_model=False,
                                     hdf5_path="/tmp/bci-moabb", n_jobs=1).process(pipelines)
    X, y, meta = paradigm.get_data(dataset)
    y = LabelEncoder().fit_transform(y)
    rows = []
    for name, pipe in pipelines.items():
        moabb_scores, ours, hits, n = [], [], 0, 0
        for subject in dataset.subject_list:
            for session in ("0", "1"):
                test = ((meta.subject == subject) & (meta.session == session)).to_numpy()
                train = ((meta.subject == subject) & (meta.session != session)).to_numpy()
                pred = clone(pipe).fit(X[train], y[train]).predict(X[test])
                ours.append(float((pred == y[test]).mean()))
                hits, n = hits + int((pred == y[test]).sum()), n + int(test.sum())
                r = results[(results.pipeline == name) & (results.subject == str(subject)) & (results.session == session)]
                moabb_scores.append(float(r["score"].item()))
        lo, hi = wilson_interval(hits, n)
        rows.append({"pipeline": name, "moabb_mean": float(np.mean(moabb_scores)), "ours_mean": float(np.mean(ours)),
                     "max_abs_diff": float(np.max(np.abs(np.subtract(moabb_scores, ours)))), "pooled": hits / n,
                     "ci95": [lo, hi], "n": n, "per_fold_moabb": moabb_scores, "per_fold_ours": ours})
    print(f"SSVEP Exo, {len(dataset.subject_list)} subjects, 4 classes (chance 0.25), window 2-4 s, leave one session out "
          f"(MOABB CrossSessionEvaluation); {time.perf_counter() - t0:.0f} s")
    print("| pipeline | MOABB mean | same folds here | max diff | pooled accuracy [95 % CI] |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['pipeline']} | {r['moabb_mean']:.3f} | {r['ours_mean']:.3f} | {r['max_abs_diff']:.1e} | "
              f"{r['pooled']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] (n={r['n']}) |")
    Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
