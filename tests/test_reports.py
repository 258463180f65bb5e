"""Reports that can be trusted (CIs, p-values, the split used, what did not run) and `bci-train` errors
that are one line, never a traceback."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from offline_training.cli import main as bci_train
from offline_training.experiments.evaluate import chance_p_value, evaluate, report_markdown, wilson_interval

REPO = Path(__file__).resolve().parents[1]
TINY = "phantom:subjects=1,classes=4,channels=8,images=10,seed=2"


def test_wilson_interval_and_binomial_p_value_match_the_textbook_figures():
    # the example: top-1 0.150 vs chance 0.100 on 20 trials
    lo, hi = wilson_interval(3, 20)
    assert (round(lo, 2), round(hi, 2)) == (0.05, 0.36)
    assert chance_p_value(3, 20, 0.1) == pytest.approx(0.323, abs=1e-3)
    assert all(math.isnan(end) for end in wilson_interval(0, 0))  # no trials, no interval
    probs = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3, 0, 1]] * 0.9 + 0.025
    m = evaluate(probs, np.array([0, 1, 2, 3, 0, 1, 2, 3, 1, 0]), np.ones(10, int), "time-blocked")
    assert m["top1"] == 0.8 and m["top1_ci"][0] < 0.8 < m["top1_ci"][1] and m["top1_p"] < 1e-3
    assert m["subject_std"] is None and m["n_subjects"] == 1
    text = report_markdown([("student", m)], "x", skipped=[("leave subject out", "1 subject")])
    assert "n/a (1 subject)" in text and "± 0.000" not in text
    assert "0.800 [0.49, 0.94]" in text and "- leave subject out: 1 subject" in text


def test_fit_report_names_split_ci_p_value_config_and_learning_curve(tmp_path, capsys):
    run = tmp_path / "run"
    assert bci_train(["fit", "--data", TINY, "--out", str(run), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "test split 'by-image': top-1" in out and "95 % CI" in out and "p = " in out
    report = (run / "report.md").read_text()
    for needle in ("top-1 [95 % CI]", "p (top-1 > chance)", "by-image (the dataset's own by-image split)",
                   '"epochs": 2', '"torch"', "data spec: `phantom:", "n/a (1 subject)"):
        assert needle in report, needle
    assert (run / "learning_curve.png").stat().st_size > 1000 and (run / "confusion.png").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"top1_ci", "top1_p", "top5_ci", "split_reason"} <= set(metrics)


def test_evaluate_writes_its_own_files_and_leaves_run_outputs_intact(tmp_path):
    run = tmp_path / "run"
    assert bci_train(["run", "--data", TINY, "--out", str(run), "--epochs", "2", "--no-baselines", "--no-controls"]) == 0
    before = {name: (run / name).read_bytes() for name in ("report.md", "metrics.json", "confusion.png")}
    assert "oracle_top1" in json.loads(before["metrics.json"])
    assert b"CNN (no KD)" in before["report.md"] and b"- all controls: --no-controls" in before["report.md"]
    assert bci_train(["evaluate", str(run)]) == 0
    assert {name: (run / name).read_bytes() for name in before} == before
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["split"] == "by-image" and "top1_ci" in evaluation
    assert "top-1 [95 % CI]" in (run / "evaluation.md").read_text()


def _evil_pth(path: Path) -> Path:
    class Exploit:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"dataset": [Exploit()], "labels": [], "images": []}, path)
    return path


def _fif_with_markers(path: Path, texts: list[str]) -> Path:
    import mne

    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((2, 3000)) * 1e-5,
                          mne.create_info(["Oz", "Pz"], 500.0, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([0.5 + i * 0.5 for i in range(len(texts))], [0] * len(texts), texts))
    raw.save(path, verbose="error")
    return path


def test_every_user_error_is_one_line_with_rc_2(tmp_path, capsys):
    fif = _fif_with_markers(tmp_path / "rec_raw.fif", ["go", "stop"] * 4)
    cases = {
        "unknown data kind": (["fit", "--data", "tsv:/x.tsv", "--out", str(tmp_path / "a")], "unknown data kind 'tsv'"),
        "spec without a kind": (["fit", "--data", "/data/rec.fif", "--out", str(tmp_path / "a")], "has no kind"),
        "missing file": (["fit", "--data", f"mne:{tmp_path / 'nope.fif'}", "--out", str(tmp_path / "a")],
                         "no recording at"),
        "missing mapping file": (["fit", "--data", f"mne:{fif},mapping={tmp_path / 'none.tsv'}", "--out",
                                  str(tmp_path / "a")], "no mapping file at"),
        "unmapped markers": (["fit", "--data", f"mne:{fif}", "--out", str(tmp_path / "a"), "--no-kd"],
                             "maps to a class of the ImageNet-EEG classes"),
        "hostile file": (["fit", "--data", f"eegimagenet:{_evil_pth(tmp_path / 'evil.pth')}", "--out",
                          str(tmp_path / "a")], "refused to load"),
        "empty split": (["fit", "--data", f"mne:{fif},classes=auto", "--out", str(tmp_path / "a"), "--no-kd",
                         "--split", "by-run", "--window", "0", "0.4"], "by-run split needs at least 3 runs"),
        "no teacher": (["fit", "--data", f"mne:{fif},classes=auto", "--out", str(tmp_path / "a")], "KD needs soft labels"),
        "window outside epochs": (["fit", "--data", f"mne:{fif},classes=auto", "--out", str(tmp_path / "a"),
                                   "--no-kd", "--window", "0", "2"], "outside the epochs"),
        "bad filter": (["fit", "--data", f"mne:{fif},classes=auto", "--out", str(tmp_path / "a"), "--no-kd",
                        "--lowpass", "400"], "Nyquist"),
        "not a run folder": (["evaluate", str(tmp_path)], "is not a run folder"),
        "bad split name": (["fit", "--data", TINY, "--out", str(tmp_path / "a"), "--split", "by-mood"], "unknown split"),
    }
    for name, (argv, needle) in cases.items():
        rc = bci_train(argv)
        err = capsys.readouterr().err
        assert rc == 2, name
        lines = [line for line in err.splitlines() if line.strip() and "trials:" not in line]  # not progress bars
        assert len(lines) == 1 and lines[0].startswith(f"bci-train {argv[0]}: error: "), (name, err)
        assert needle in lines[0], (name, lines[0])
        assert "Traceback" not in err
    with pytest.raises(SystemExit) as bad_option:  # argparse: usage + one error line, rc 2
        bci_train(["fit", "--data", TINY, "--out", str(tmp_path / "a"), "--epochs", "many"])
    assert bad_option.value.code == 2 and "Traceback" not in capsys.readouterr().err


def test_cli_process_prints_no_traceback_and_verbose_does(tmp_path):
    argv = [sys.executable, "-m", "offline_training.cli", "fit", "--data", "tsv:/x", "--out", str(tmp_path / "a")]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    quiet = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert quiet.stderr.strip().splitlines() == ["bci-train fit: error: unknown data kind 'tsv' in 'tsv:/x'; "
                                                 "use one of phantom, eegimagenet, xdf, mne, csv, bids, things"]
    loud = subprocess.run(argv[:3] + ["-v"] + argv[3:], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert loud.returncode == 2 and "Traceback" in loud.stderr
