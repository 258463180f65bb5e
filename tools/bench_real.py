"""Real EEG benchmark: every reference method and student on the same protocol folds of the public sets in
``../shared/data/real`` (read through the project's loaders), per subject; writes
``docs/benchmarks/real_eeg.json``, ``docs/real_eeg.png`` and the README's "Real EEG" section.

    PYTHONPATH=$PWD python tools/bench_real.py [--sets ssvep n170 p300] [--students ccanet eegnet]
        [--protocols within-session cross-session cross-subject] [--no-readme]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
# The ERP recipe, chosen a priori for both Muse tasks (not on test folds): a causal 4th-order Butterworth
# band-pass 0.5-20 Hz on the continuous recording (N170 and P300 are slow waves; above 20 Hz the Muse's
# temporal sites carry mostly muscle), the epoch 0-0.6 s after the picture, and training epochs over
# 100 uV peak-to-peak left out of training (MNE's reject=dict(eeg=100e-6)); every test trial is scored.
ERP_BAND, ERP_REJECT = (0.5, 20.0), 100.0
# name -> (title, spec, band-pass Hz, protocol kwargs, metric, training-epoch rejection (signal unit) or None)
SETS = {
    "ssvep": ("SSVEP Exo, subjects 01-06, 4 classes (rest, 13, 21, 17 Hz), window 1-4 s",
              "mne:{R}/ssvep_exo,event_id=1:rest;2:13Hz;3:21Hz;4:17Hz,tmin=1,tmax=4", (5.0, 45.0),
              {"group": "session"}, "top1", None),
    "n170": ("Faces vs houses (N170), Muse subject 1, 0-0.6 s", "csv:{R}/eegnb_muse/N170/subject1,event_id=1:house;2:face,tmin=0,tmax=0.6",
             ERP_BAND, {"group": "run"}, "auc", ERP_REJECT),
    "p300": ("Visual P300, Muse subject 1, 0-0.6 s", "csv:{R}/eegnb_muse/P300/subject1,event_id=1:non-target;2:target,tmin=0,tmax=0.6",
             ERP_BAND, {"group": "run"}, "auc", ERP_REJECT),
}
PROTOCOL_NAME = {"session": "cross-session (MOABB CrossSession: leave one session out, per subject)",
                 "run": "leave-one-recording-out (cross-session over recordings, per subject)",
                 "within-session": "within-session (MOABB WithinSession: stratified 4-fold inside each session, per subject)",
                 "cross-subject": "cross-subject (MOABB CrossSubject: leave one subject out, the first 25 % of each class "
                                  "in each of its sessions added to training as calibration)"}
CALIBRATION = 0.25
# protocols run by default: every one the set allows for SSVEP; leave-one-recording-out for the Muse sets
DEFAULT_PROTOCOLS = {"ssvep": ("within-session", "cross-session", "cross-subject"), "n170": ("cross-session",),
                     "p300": ("cross-session",)}


def load(name: str):
    from bci_stream.contract.preprocessing import FilterDesign, Preprocessing
    from offline_training.datasets import load_trials

    _, spec, band, _, _, _ = SETS[name]
    pre = Preprocessing(filters=(FilterDesign(kind="bandpass", freqs=band),))
    return load_trials(spec.format(R=REAL), progress=False, preprocessing=pre)


def protocol_folds(trials, protocol: str, group: str) -> list:
    """The folds of one MOABB-named protocol on ``trials`` (``group``: "session" or "run" for cross-session)."""
    from offline_training.experiments.protocols import make_folds

    if protocol == "cross-session":
        return make_folds(trials, protocol, group=group)
    if protocol == "cross-subject":
        return make_folds(trials, protocol, calibration=CALIBRATION)
    return make_folds(trials, protocol, k=4)


def applicable(trials, protocol: str) -> bool:
    """Whether the data allow ``protocol`` (cross-subject needs two subjects)."""
    return protocol != "cross-subject" or len(np.unique(trials.subjects)) > 1


def bench(name: str, students: list[str], protocol: str, trials=None) -> dict:
    from offline_training.experiments.protocols import cross_session
    from offline_training.experiments.real_eval import run_folds, score
    from offline_training.experiments.references import references_for

    title, spec, band, kw, metric, reject = SETS[name]
    trials = load(name) if trials is None else trials
    crop = (0, trials.eeg.shape[-1])
    own = protocol_folds(trials, protocol, kw["group"])
    pooled = (cross_session(trials, **kw, pool_subjects=True)
              if protocol == "cross-session" and len(np.unique(trials.subjects)) > 1 else None)
    rows = {}
    for ref in references_for(trials.class_names):
        t0 = time.perf_counter()
        rows[ref] = {"kind": "reference", **score(run_folds(ref, "reference", trials, own, crop, reject=reject), trials)}
        print(f"{name} {protocol} {ref}: {rows[ref]['mean']} ({time.perf_counter() - t0:.0f} s)", flush=True)
    for st in students:
        variants = [(st, own)] + ([(f"{st} (pre-trained on the other subjects)", pooled)] if pooled and st == students[0] else [])
        for label, folds in variants:
            t0 = time.perf_counter()
            rows[label] = {"kind": "student", **score(run_folds(st, "student", trials, folds, crop, reject=reject), trials)}
            print(f"{name} {protocol} {label}: {rows[label]['mean']} ({time.perf_counter() - t0:.0f} s)", flush=True)
    name_of = PROTOCOL_NAME[kw["group"]] if protocol == "cross-session" else PROTOCOL_NAME[protocol]
    return compared({"title": title, "spec": spec, "bandpass": list(band), "reject": reject, "protocol": name_of,
                     "metric": metric, "summary": trials.summary(), "rows": rows, "chance": 1 / trials.n_classes})


def compared(res: dict) -> dict:
    """``res`` with its best reference, subjects and every other row's paired difference to that reference."""
    from offline_training.experiments.stats import paired_differences

    rows, metric = res["rows"], res["metric"]
    refs = [r for r in rows if rows[r]["kind"] == "reference"]
    best_ref = max(refs, key=lambda r: rows[r]["mean"][metric])
    subjects = sorted(rows[best_ref]["per_subject"])
    for label, row in rows.items():
        row.pop("vs_best_reference", None)
        if label != best_ref:
            a = [row["per_subject"][s][metric] for s in subjects]
            b = [rows[best_ref]["per_subject"][s][metric] for s in subjects]
            row["vs_best_reference"] = paired_differences(a, b)
    return {**res, "best_reference": best_ref, "subjects": subjects}


def merged(old: dict | None, new: dict) -> dict:
    """``new`` plus the rows of ``old`` it did not re-measure, when both ran on the same folds (same spec,
    band-pass, rejection, protocol and trials); otherwise ``new`` alone (the old rows are not comparable).
    So ``--students X`` adds or refreshes X's rows and keeps every other student's."""
    same = old is not None and all(old.get(k) == new.get(k) for k in ("spec", "reject", "protocol", "summary")) \
        and list(old.get("bandpass", [])) == list(new["bandpass"])
    if not same:
        return new
    return compared({**new, "rows": {**old["rows"], **new["rows"]}})


def result_key(name: str, protocol: str) -> str:
    """JSON key of one set's protocol: the set's name for cross-session (as before), else ``set/protocol``."""
    return name if protocol == "cross-session" else f"{name}/{protocol}"


def _fmt(row: dict, metric: str) -> str:
    sd = row["sd"][metric]
    return f"{row['mean'][metric]:.3f}" + (f" ± {sd:.3f}" if np.isfinite(sd) else "")


def markdown(results: dict) -> str:
    lines = ["## Real EEG (measured; read this first)", "",
             "Public recordings in `../shared/data/real/` (see its README), read as published through the normal "
             "data specs, every method on the same folds, figures per subject. References are the field's "
             "(pyRiemann, scikit-learn, MOABB's SSVEP_CCA and SSVEP_TRCA and its filter bank) run by the project; students are trained "
             "networks that export to ONNX. Hyper-parameters fixed a priori (none chosen on test folds). "
             "Command: `PYTHONPATH=$PWD python tools/bench_real.py` (figures: `docs/benchmarks/real_eeg.json`).", "",
             "![per-subject results](docs/real_eeg.png)", ""]
    for res in results.values():
        metric = res["metric"]
        mname = "top-1" if metric == "top1" else "ROC AUC"
        lines += [f"### {res['title']}: {res['protocol'].split(' (')[0]}", "", f"{res['protocol']}; {res['summary'].split(' (')[0]}; chance top-1 "
                  f"{res['chance']:.2f}{'' if metric == 'top1' else ', AUC 0.5'}; band-pass {res['bandpass'][0]:g}-{res['bandpass'][1]:g} Hz (causal)"
                  + (f"; training epochs over {res['reject']:g} uV peak-to-peak left out of training (every test trial scored)"
                     if res.get("reject") else "") + ".", "",
                  f"| method | kind | {mname} mean ± sd over subjects | per subject | "
                  + ("balanced acc. | " if metric == "auc" else "") + "Δ vs best reference [95 % CI], p (paired t / sign-flip) | training s |",
                  "|---|---|---|---|" + ("---|" if metric == "auc" else "") + "---|---|"]
        for label, row in sorted(res["rows"].items(), key=lambda kv: -kv[1]["mean"][metric]):
            per = " ".join(f"{row['per_subject'][s][metric]:.2f}" for s in res["subjects"])
            if len(res["subjects"]) == 1:
                p = row["per_subject"][res["subjects"][0]]
                ci = p.get(f"{metric}_ci")
                per = f"{p[metric]:.3f} [{ci[0]:.2f}, {ci[1]:.2f}] (n={p['n']})"
            vs = row.get("vs_best_reference")
            if vs is None:
                d = "best reference"
            elif vs["n"] < 2:
                d = f"{vs['mean']:+.3f} (1 subject: no test over subjects)"
            else:
                d = f"{vs['mean']:+.3f} [{vs['ci'][0]:+.3f}, {vs['ci'][1]:+.3f}], p {vs['p_t']:.2g} / {vs['p_perm']:.2g}"
            bal = f"{row['mean']['balanced_accuracy']:.3f} | " if metric == "auc" else ""
            lines.append(f"| {label} | {row['kind']} | {_fmt(row, metric)} | {per} | {bal}{d} | {row['seconds']:.0f} |")
        lines.append("")
    absent = [k for k in SETS if not any(r.split("/")[0] == k for r in results)]
    if absent:
        lines += [f"Not measured in this run: {'; '.join(SETS[k][0] for k in absent)} (`--sets {' '.join(absent)}`).", ""]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = min(3, len(results))
    nrows = -(-len(results) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 4.4 * nrows), squeeze=False)
    for ax in axes.flat[len(results):]:
        ax.set_visible(False)
    for ax, res in zip(axes.flat, results.values()):
        metric = res["metric"]
        names = sorted(res["rows"], key=lambda r: -res["rows"][r]["mean"][metric])
        for i, name in enumerate(names):
            row = res["rows"][name]
            vals = [row["per_subject"][s][metric] for s in res["subjects"]]
            ax.scatter(np.full(len(vals), i) + np.linspace(-0.15, 0.15, len(vals)), vals, s=14,
                       color="C0" if row["kind"] == "student" else "C1")
            ax.plot([i - 0.3, i + 0.3], [row["mean"][metric]] * 2, color="k")
        ax.axhline(res["chance"] if metric == "top1" else 0.5, color="red", linestyle="--", linewidth=1, label="chance")
        ax.set_xticks(range(len(names)), [n.replace(" (pre-trained on the other subjects)", " (pooled)") for n in names],
                      rotation=40, ha="right", fontsize=8)
        ax.set_ylabel("top-1" if metric == "top1" else "ROC AUC")
        ax.set_title(res["title"].split(",")[0] + f"\n{res['protocol'].split(' (')[0]}", fontsize=9)
        ax.set_ylim(0, 1)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Real EEG, per subject (dots; bar = mean). Blue: students, orange: references", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_readme(section: str, readme: Path) -> None:
    text = readme.read_text()
    begin, end = "<!-- real-eeg:begin -->", "<!-- real-eeg:end -->"
    block = f"{begin}\n{section}\n{end}"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:  # after the intro: before the first second-level heading
        i = text.find("\n## ")
        text = text[: i + 1] + block + "\n\n" + text[i + 1 :]
    readme.write_text(text)


def read_results(path: Path) -> dict:
    """Earlier results (JSON turns the per-subject keys into strings: back to ints)."""
    results = json.loads(path.read_text()) if path.exists() else {}
    for res in results.values():
        for row in res["rows"].values():
            row["per_subject"] = {int(k): v for k, v in row["per_subject"].items()}
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--students", nargs="+", default=["ccanet", "eegnet"],
                   help="students (the first also pre-trained on the other subjects in cross-session); their rows are "
                        "merged into the JSON's (other students' rows are kept when the folds are the same); the "
                        "committed table adds shallow deep4 seed")
    p.add_argument("--protocols", nargs="+", choices=["within-session", "cross-session", "cross-subject"],
                   help="MOABB-named protocols (default: all three for ssvep, cross-session for n170/p300; those "
                        "the data do not allow are skipped)")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "real_eeg.json"))
    p.add_argument("--no-readme", action="store_true", help="leave the README alone")
    p.add_argument("--report-only", action="store_true",
                   help="measure nothing: redraw the PNG and the README section from the JSON")
    args = p.parse_args()
    if not REAL.is_dir():
        raise SystemExit(f"no real data at {REAL}: see the project's ../shared/data/real/README.md")
    out = Path(args.out)
    results = read_results(out)
    for name in [] if args.report_only else args.sets:
        trials = load(name)
        for protocol in args.protocols or DEFAULT_PROTOCOLS[name]:
            if applicable(trials, protocol):
                key = result_key(name, protocol)
                results[key] = merged(results.get(key), bench(name, args.students, protocol, trials))
                out.write_text(json.dumps(results, indent=1))
    order = [result_key(k, p) for k in SETS for p in ("cross-session", "within-session", "cross-subject")]
    ordered = {k: results[k] for k in order if k in results}
    plot(ordered, ROOT / "docs" / "real_eeg.png")
    if not args.no_readme:
        write_readme(markdown(ordered), ROOT / "README.md")
    print(markdown(ordered))


if __name__ == "__main__":
    main()
