"""A sweep's summary: ``sweep.csv`` (one row per trial) and ``sweep.md`` (best per subject, spread over
seeds, paired comparisons). Pure functions of the rows; no Ray needed (tested without it).

Selection is on the validation metric; test accuracy is reported for what was selected, never used
to select.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

from bci_stream.io.safe_write import write_text
from offline_training.sweep.space import PARAMS, canonical_params, describe, student_of

STATUSES = ("done", "stopped early", "failed", "unfinished")
FIXED_COLUMNS = ("trial_id", "status", "config_id", "subject", "seed", "epochs_run", "best_epoch", "val_loss",
                 "val_top1", "test_top1", "test_top5", "run_dir")


def spread(values) -> dict:
    """``n``, ``mean``, ``sd`` (n − 1) and the 95 % t-interval ``ci_low``/``ci_high`` of ``values``
    (NaN where ``n`` is too small)."""
    x = np.asarray([v for v in values if v is not None and not _nan(v)], dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n > 1 else math.nan
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half}


def paired(a: dict[int, float], b: dict[int, float]) -> dict:
    """``a − b`` over the seeds both have: :func:`spread` of the differences plus the paired t-test ``p``
    (NaN below two pairs or when every difference is the same)."""
    shared = sorted(set(a) & set(b))
    diffs = [a[s] - b[s] for s in shared]
    out = spread(diffs)
    out["seeds"] = shared
    out["p"] = math.nan
    if len(diffs) > 1 and np.ptp(diffs) > 0:
        out["p"] = float(stats.ttest_rel([a[s] for s in shared], [b[s] for s in shared]).pvalue)
    return out


def _nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _better(metric: str):
    """``key`` for ``min``: smaller is better for losses, larger for accuracies."""
    return (lambda v: v) if metric.endswith("loss") else (lambda v: -v)


def best_trial(rows: list[dict], metric: str, students: tuple[str, ...] | None = None) -> dict | None:
    """The finished trial with the best validation ``metric`` (optionally among ``students``, registry
    names: ``seed``, ``phase``, ``eegnet``...)."""
    done = [r for r in rows if r["status"] == "done" and not _nan(r[metric])
            and (students is None or student_of(r["params"]) in students)]
    key = _better(metric)
    return min(done, key=lambda r: key(r[metric])) if done else None


def configurations(rows: list[dict], metric: str) -> dict[tuple, dict]:
    """Finished trials grouped by (subject, config_id): per-seed metric and test top-1, and their spread."""
    groups: dict[tuple, dict] = {}
    for r in rows:
        if r["status"] != "done":
            continue
        g = groups.setdefault((r["subject"], r["config_id"]), {"params": r["params"], "metric": {}, "test_top1": {}})
        g["metric"][r["seed"]] = r[metric]
        g["test_top1"][r["seed"]] = r["test_top1"]
    for g in groups.values():
        g["metric_spread"] = spread(g["metric"].values())
        g["test_spread"] = spread(g["test_top1"].values())
    return groups


def write_csv(rows: list[dict], path: Path) -> None:
    """One row per trial: :data:`FIXED_COLUMNS` then the sampled parameters."""
    names = [p for p in PARAMS if any(p in r["params"] for r in rows)]
    f = io.StringIO(newline="")
    w = csv.writer(f)
    w.writerow([*FIXED_COLUMNS, *names])
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in FIXED_COLUMNS] + [_cell(r["params"].get(p)) for p in names])
    write_text(path, f.getvalue())


def read_csv(path: Path) -> list[dict]:
    """Rows of :func:`write_csv` back (numbers as floats/ints, parameters under ``params``)."""
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            row = {k: _parse(raw[k]) for k in FIXED_COLUMNS}
            row["status"], row["trial_id"], row["run_dir"] = raw["status"], raw["trial_id"], raw["run_dir"]
            row["config_id"] = raw["config_id"]
            row["params"] = canonical_params({k: _parse(v) for k, v in raw.items() if k not in FIXED_COLUMNS and v != ""})
            rows.append(row)
    return rows


def _cell(v) -> str:
    if v is None or _nan(v):
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _parse(v: str):
    if v == "":
        return math.nan
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(v, v)


def _fmt(s: dict, digits: int = 3) -> str:
    if s["n"] == 0:
        return "–"
    if s["n"] == 1:
        return f"{s['mean']:.{digits}f} (1 seed)"
    return f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f} [{s['ci_low']:.{digits}f}, {s['ci_high']:.{digits}f}]"


def summary_markdown(rows: list[dict], meta: dict) -> str:
    """``sweep.md``: what ran, the count per status, best configuration per subject (on validation)
    with its test top-1 over seeds, every configuration, and paired comparisons against the best."""
    metric = meta["metric"]
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    lines = [f"# Sweep {meta['dir']}", "",
             f"- data: `{meta['data']}` (split {meta['split']}); space: `{meta['space']}`",
             f"- {len(rows)} trials: {meta['configurations']} configurations × subjects {meta['subjects']} × "
             f"seeds {meta['seeds']}; scheduler {meta['scheduler']}; selection on `{metric}` ({meta['mode']})",
             "- " + ", ".join(f"{counts[s]} {s}" for s in STATUSES)
             + (f"; wall time of the last session {meta['wall_s']:.0f} s" if meta.get("wall_s") else ""),
             "",
             "Test top-1: mean ± sd over seeds [95 % t-interval]. Chosen on validation; test is reported, never "
             "used to choose. A configuration finished on more seeds ranks first (ASHA stopped the others on "
             "some), then the better mean validation. A seed sets the initialisation, the batch order and, for "
             "data without a split of its own, the by-image split; comparisons pair configurations on the "
             "same seed.", ""]
    groups = configurations(rows, metric)
    key = _better(metric)
    subjects = sorted({s for s, _ in groups}, key=str)
    best: dict = {}
    lines += ["## Best per subject", "", f"| subject | configuration | seeds | {metric} | test top-1 |",
              "|---|---|---|---|---|"]
    for s in subjects:
        mine = {c: g for (subj, c), g in groups.items() if subj == s}
        # most seeds first (a configuration seen on more seeds is better evidenced), then the metric
        c = min(mine, key=lambda c: (-mine[c]["metric_spread"]["n"], key(mine[c]["metric_spread"]["mean"])))
        best[s] = c
        g = mine[c]
        lines.append(f"| {s} | `{c}` {describe(g['params'])} | {g['metric_spread']['n']} | "
                     f"{_fmt(g['metric_spread'], 4)} | {_fmt(g['test_spread'])} |")
    lines += ["", "## Configurations", "", f"| subject | configuration | seeds | {metric} | test top-1 |",
              "|---|---|---|---|---|"]
    for (s, c), g in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), key(kv[1]["metric_spread"]["mean"]))):
        lines.append(f"| {s} | `{c}` {describe(g['params'])} | {g['metric_spread']['n']} | "
                     f"{_fmt(g['metric_spread'], 4)} | {_fmt(g['test_spread'])} |")
    lines += ["", "## Paired comparisons", "",
              "The best configuration of each subject against each other one, on the seeds both finished: "
              "mean difference (best − other) [95 % t-interval], paired t-test p.", "",
              f"| subject | best | other | shared seeds | Δ test top-1 | p | Δ {metric} |", "|---|---|---|---|---|---|---|"]
    for s in subjects:
        b = groups[(s, best[s])]
        for (subj, c), g in sorted(groups.items(), key=lambda kv: str(kv[0])):
            if subj != s or c == best[s]:
                continue
            dt, dm = paired(b["test_top1"], g["test_top1"]), paired(b["metric"], g["metric"])
            if dt["n"] == 0:
                continue
            p = "–" if _nan(dt["p"]) else f"{dt['p']:.3f}"
            lines.append(f"| {s} | `{best[s]}` | `{c}` | {dt['n']} | {_fmt(dt)} | {p} | {_fmt(dm, 4)} |")
    stopped = [r for r in rows if r["status"] == "stopped early"]
    if stopped:
        lines += ["", "## Stopped early by the scheduler", "", f"| trial | configuration | subject | seed | epochs | {metric} |",
                  "|---|---|---|---|---|---|"]
        for r in stopped:
            lines.append(f"| {r['trial_id']} | `{r['config_id']}` | {r['subject']} | {r['seed']} | {r['epochs_run']} | "
                         f"{_cell(r[metric])} |")
    return "\n".join(lines) + "\n"


def by_status(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows grouped by status (every status present, possibly empty)."""
    out: dict[str, list[dict]] = defaultdict(list)
    for s in STATUSES:
        out[s] = []
    for r in rows:
        out[r["status"]].append(r)
    return out
