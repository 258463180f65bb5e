"""Artifact stages on real data (:mod:`bci_stream.contract.artifacts`): ASR on and off, injected blinks, one
dropped (flat) electrode repaired vs withheld vs untouched, on the same folds; writes
``docs/benchmarks/artifacts.json`` and ``docs/artifacts.png``.

    PYTHONPATH=$PWD python tools/bench_artifacts.py [--sets ssvep n170] [--cutoff 20]

- SSVEP Exo subjects 01-06, cross-session (train on one session, test on the other), 8 occipital
  channels, band-pass 5-45 Hz, window 1-4 s, the best reference of ``bench_real`` (CCA + LDA), top-1.
- Muse faces vs houses (N170) subject 1, leave-one-recording-out, band-pass 0.5-20 Hz, 0-0.6 s,
  xDAWN + tangent space + LR, ROC AUC; training epochs over 100 µV peak-to-peak left out (as bench_real).

Every condition runs the live chain over each continuous recording from its first sample (the same
code as ``bci-stream``): artifacts are injected into the raw test recording only; ASR is calibrated
per fold on the training recordings (after the chain) and applied to training and test alike.
Blinks: a frontal blink waveform (0.1 s rise, 0.3 s fall), 15 a minute at random, at the eyes 8x the
recording's median channel SD (≈ 150 µV for 20 µV EEG), scaled by exp(-distance / 8 cm) from the
point between Fp1 and Fp2 (Muse AF7/AF8 get about half, occipital sites a tenth; no reference
modelled). Flat electrode: Oz (SSVEP) / TP10 (Muse) holds its last value over the middle half of the
test recording. A withheld trial scores as chance (accuracy 1/K, probabilities uniform); the
fraction withheld is reported. Paired comparisons: trial-level bootstrap (2000 resamples) of the
difference on the same trials, and per subject (paired t, sign flip) where there are several.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
SETS = {
    "ssvep": dict(title="SSVEP Exo, subjects 01-06, cross-session (leave one session out), 4 classes, 1-4 s",
                  folders=[REAL / f"ssvep_exo/subject0{s}" for s in range(1, 7)], glob="*_raw.fif",
                  event_id="1:rest;2:13Hz;3:21Hz;4:17Hz", band=(5.0, 45.0), window=(1.0, 4.0), method="cca+lda",
                  metric="top1", reject=None, flat="Oz"),
    "n170": dict(title="Muse faces vs houses (N170), subject 1, leave-one-recording-out, 0-0.6 s",
                 folders=[REAL / "eegnb_muse/N170/subject1"], glob="**/*.csv", event_id="1:house;2:face",
                 band=(0.5, 20.0), window=(0.0, 0.6), method="xdawn+ts+lr", metric="auc", reject=100.0, flat="TP10"),
}
CONDITIONS = ("clean", "clean + ASR", "blinks", "blinks + ASR", "flat untouched", "flat withheld", "flat repaired")
COMPARE = [("clean + ASR", "clean"), ("blinks", "clean"), ("blinks + ASR", "blinks"), ("flat untouched", "clean"),
           ("flat repaired", "flat withheld"), ("flat repaired", "flat untouched"), ("flat withheld", "flat untouched")]
BLINKS_PER_MINUTE, BLINK_GAIN, BLINK_SPACE_M = 15.0, 8.0, 0.08


def blink_waveform(sfreq: float) -> np.ndarray:
    """A unit blink: raised-cosine rise over 0.1 s, fall over 0.3 s (EOG blink shape, ~0.4 s)."""
    rise, fall = np.arange(int(0.1 * sfreq)) / (0.1 * sfreq), np.arange(int(0.3 * sfreq)) / (0.3 * sfreq)
    return np.concatenate([(1 - np.cos(np.pi * rise)) / 2, (1 + np.cos(np.pi * fall)) / 2])


def inject_blinks(data: np.ndarray, ch_names: list[str], sfreq: float, seed: int) -> np.ndarray:
    """``data`` ``(ch, t)`` plus blinks at random times, scaled by each electrode's distance from the eyes."""
    from scipy.signal import butter, sosfiltfilt

    from bci_stream.contract.montage import channel_positions

    pos = channel_positions(list(ch_names))
    eyes = channel_positions(["Fp1", "Fp2"]).mean(0)
    gain = np.exp(-np.linalg.norm(pos - eyes, axis=1) / BLINK_SPACE_M)
    sd = np.median(sosfiltfilt(butter(2, 1.0, "highpass", fs=sfreq, output="sos"), data, axis=1).std(1))
    shape = blink_waveform(sfreq)
    rng = np.random.default_rng(seed)
    out = data.astype(np.float64).copy()
    t = int(rng.exponential(60 * sfreq / BLINKS_PER_MINUTE))
    while t + len(shape) < data.shape[1]:
        out[:, t : t + len(shape)] += BLINK_GAIN * sd * gain[:, None] * shape[None] * rng.uniform(0.7, 1.3)
        t += len(shape) + int(sfreq) // 2 + int(rng.exponential(60 * sfreq / BLINKS_PER_MINUTE))
    return out.astype(np.float32)


def drop_electrode(data: np.ndarray, ch_names: list[str], name: str) -> np.ndarray:
    """``data`` with ``name`` holding its last value over the middle half of the recording."""
    out = data.copy()
    i, n = ch_names.index(name), data.shape[1]
    out[i, n // 4 : 3 * n // 4] = out[i, n // 4]
    return out


def epochs(data: np.ndarray, events: list[tuple[int, str]], classes: list[str], sfreq: float,
           window: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = int(round(window[0] * sfreq)), int(round(window[1] * sfreq))
    keep = [(s, c) for s, c in events if c in classes and s + b <= data.shape[1]]
    return (np.stack([data[:, s + a : s + b] for s, _ in keep]).astype(np.float64),
            np.array([classes.index(c) for _, c in keep]))


def run_set(name: str, cutoff: float) -> dict:
    from bci_stream.contract.artifacts import (
        RepairConfig,
        artifacts_continuous,
        asr_continuous,
        calibrate_asr,
    )
    from bci_stream.contract.preprocessing import FilterDesign, Preprocessing, preprocess_continuous
    from bci_stream.io import read_recording
    from offline_training.experiments.references import build_reference, reference_probabilities
    from offline_training.training.splits import clean_training

    cfg = SETS[name]
    pre = Preprocessing(filters=(FilterDesign(kind="bandpass", freqs=cfg["band"]),))
    classes = list(dict.fromkeys(c.split(":")[1] for c in cfg["event_id"].split(";")))
    trials: dict[str, list] = {c: [] for c in CONDITIONS}
    labels, subjects, withheld = [], [], {c: [] for c in CONDITIONS}
    for subject, folder in enumerate(cfg["folders"], start=1):
        recs = [read_recording(p, event_id=cfg["event_id"]) for p in sorted(folder.glob(cfg["glob"]))]
        names, sfreq = list(recs[0].ch_names), recs[0].sfreq
        chain = [preprocess_continuous(pre, r.data, names, sfreq) for r in recs]
        for k, test in enumerate(recs):
            t0 = time.perf_counter()
            train_ids = [j for j in range(len(recs)) if j != k]
            asr = calibrate_asr([chain[j] for j in train_ids], names, sfreq, cutoff)
            seed = 1000 * subject + k
            blinks = inject_blinks(test.data, names, sfreq, seed)
            flat = drop_electrode(test.data, names, cfg["flat"])
            test_data = {
                "clean": chain[k], "clean + ASR": asr_continuous(asr, chain[k]),
                "blinks": preprocess_continuous(pre, blinks, names, sfreq),
                "blinks + ASR": asr_continuous(asr, preprocess_continuous(pre, blinks, names, sfreq)),
                "flat untouched": preprocess_continuous(pre, flat, names, sfreq),
                "flat withheld": artifacts_continuous(pre, flat, names, sfreq, RepairConfig(mode="withhold")),
                "flat repaired": artifacts_continuous(pre, flat, names, sfreq, RepairConfig(mode="repair")),
            }
            plain = [epochs(chain[j], recs[j].events, classes, sfreq, cfg["window"]) for j in train_ids]
            cleaned = [epochs(asr_continuous(asr, chain[j]), recs[j].events, classes, sfreq, cfg["window"])
                       for j in train_ids]
            models = {}
            for key, parts in (("plain", plain), ("asr", cleaned)):
                x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
                keep = clean_training(x, y, np.arange(len(y)), cfg["reject"])
                model = build_reference(cfg["method"], sfreq, classes)
                models[key] = model.fit(x[keep], y[keep])
            for cond, data in test_data.items():
                x, y = epochs(data, test.events, classes, sfreq, cfg["window"])
                bad = ~np.isfinite(x).all(axis=(1, 2))
                probs = np.full((len(y), len(classes)), 1.0 / len(classes))
                if (~bad).any():
                    probs[~bad] = reference_probabilities(models["asr" if "ASR" in cond else "plain"], x[~bad],
                                                          len(classes))
                trials[cond].append(probs)
                withheld[cond].append(bad)
            labels.append(y)
            subjects.append(np.full(len(y), subject))
            print(f"{name} subject {subject} recording {k + 1}/{len(recs)}: {time.perf_counter() - t0:.0f} s", flush=True)
    labels, subjects = np.concatenate(labels), np.concatenate(subjects)
    probs = {c: np.concatenate(v) for c, v in trials.items()}
    return summarise(cfg, probs, labels, subjects, {c: np.concatenate(v) for c, v in withheld.items()}, cutoff)


def scores(p: np.ndarray, y: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Per-trial correctness, a withheld trial counting 1/K (its expected score as a guess)."""
    return np.where(bad, 1.0 / p.shape[1], (p.argmax(1) == y).astype(float))


def auc(p: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p[:, 1]))


def summarise(cfg: dict, probs: dict, y: np.ndarray, subj: np.ndarray, bad: dict, cutoff: float) -> dict:
    from bci_stream.live.stats import roc_auc_interval, wilson_interval
    from offline_training.experiments.stats import paired_differences

    rng = np.random.default_rng(0)
    boot = [rng.integers(0, len(y), len(y)) for _ in range(2000)]
    metric = cfg["metric"]

    def figure(c: str, idx=slice(None)) -> float:
        return float(scores(probs[c][idx], y[idx], bad[c][idx]).mean()) if metric == "top1" else auc(probs[c][idx], y[idx])

    rows = {}
    for c in CONDITIONS:
        s = scores(probs[c], y, bad[c])
        row = {"top1": float(s.mean()), "top1_ci": list(wilson_interval(int(round(s.sum())), len(y))),
               "withheld": float(bad[c].mean()), "n": int(len(y)),
               "per_subject": {int(k): figure(c, subj == k) for k in np.unique(subj)}}
        if probs[c].shape[1] == 2:
            a, lo, hi = roc_auc_interval(y, probs[c][:, 1])
            row.update(auc=a, auc_ci=[lo, hi])
        rows[c] = row
    comparisons = []
    for a, b in COMPARE:
        diffs = [figure(a, i) - figure(b, i) for i in boot]
        comp = {"a": a, "b": b, "metric": metric, "diff": figure(a) - figure(b),
                "ci": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]}
        ks = sorted(rows[a]["per_subject"])
        if len(ks) > 1:
            comp["per_subject"] = paired_differences([rows[a]["per_subject"][k] for k in ks],
                                                     [rows[b]["per_subject"][k] for k in ks])
        comparisons.append(comp)
    return {"title": cfg["title"], "method": cfg["method"], "metric": metric, "bandpass": list(cfg["band"]),
            "window": list(cfg["window"]), "flat_electrode": cfg["flat"], "asr_cutoff": cutoff,
            "chance": 1.0 / probs["clean"].shape[1], "rows": rows, "comparisons": comparisons}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6.5 * len(results), 4.2), squeeze=False)
    for ax, res in zip(axes[0], results.values()):
        m = res["metric"]
        vals = [res["rows"][c][m] for c in CONDITIONS]
        ci = np.array([res["rows"][c][f"{m}_ci"] for c in CONDITIONS])
        colours = ["#4a7ab5", "#4a7ab5", "#c0504d", "#c0504d", "#8064a2", "#8064a2", "#8064a2"]
        ax.bar(range(len(vals)), vals, color=colours, alpha=0.85,
               yerr=[np.array(vals) - ci[:, 0], ci[:, 1] - np.array(vals)], capsize=3)
        ax.axhline(0.5 if m == "auc" else res["chance"], color="k", ls=":", lw=1)
        ax.set_xticks(range(len(vals)), CONDITIONS, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("ROC AUC" if m == "auc" else "top-1 (withheld = chance)")
        ax.set_title(res["title"].split(",")[0] + f" — {res['method']}", fontsize=9)
        ax.set_ylim(0.3 if m == "auc" else 0.0, 1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--cutoff", type=float, default=20.0, help="ASR cutoff, SD (EEGLAB's default 20)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "artifacts.json"))
    args = ap.parse_args()
    results = {name: run_set(name, args.cutoff) for name in args.sets}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    plot(results, ROOT / "docs" / "artifacts.png")
    for name, res in results.items():
        m = res["metric"]
        print(name, {c: round(r[m], 3) for c, r in res["rows"].items()})
        for comp in res["comparisons"]:
            print(f"  {comp['a']} - {comp['b']}: {comp['diff']:+.3f} [{comp['ci'][0]:+.3f}, {comp['ci'][1]:+.3f}]")
    print(f"wrote {out} and docs/artifacts.png")


if __name__ == "__main__":
    main()
