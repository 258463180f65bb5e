"""``bci-train sweep`` on a real Ray (local, on loopback, and a `ray start --head` cluster), plus its
space parsing, statistics and progress display, which need no Ray running."""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_PHANTOM
from scipy import stats

from bci_stream.contract.model_card import ModelCard
from offline_training.cli import main as bci_train
from offline_training.sweep.report import paired, read_csv, spread, summary_markdown, write_csv
from offline_training.sweep.space import SweepSpace, config_id, load_space, train_config

pytest.importorskip("ray")

REPO = Path(__file__).resolve().parents[1]
# conftest.TINY_PHANTOM as a data SPEC: 16 channels, 5 classes, 10 images per class, 2 subjects
TINY_SPEC = "phantom:subjects={n_subjects},classes={n_classes},channels={n_channels},images={images_per_class}," \
            "seed={seed},evoked_uv={evoked_uv}".format(**TINY_PHANTOM)
# 2 configurations x subject 1 x seeds 0, 1 = 4 one-epoch trials
TINY_SPACE = """
seed: 1
subjects: [1]
seeds: [0, 1]
params:
  epochs: 1
  lr: {loguniform: [1.0e-3, 1.0e-2]}
  dropout: {uniform: [0.1, 0.5]}
  width: 8
  n_spatial: 8
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _results(rows: list[dict]) -> dict:
    """Trial results keyed by what they ran (trial ids differ between sweeps)."""
    return {(r["config_id"], r["subject"], r["seed"]): (r["status"], r["epochs_run"], r["val_loss"], r["test_top1"])
            for r in rows}


@pytest.fixture(scope="module")
def space_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("space") / "tiny.yaml"
    path.write_text(TINY_SPACE)
    return path


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, space_file) -> Path:
    """A local Ray sweep of 4 tiny trials, ASHA on, run to completion through the CLI."""
    out = tmp_path_factory.mktemp("sweeps") / "local"
    assert bci_train(["sweep", "--data", TINY_SPEC, "--space", str(space_file), "--out", str(out), "--trials", "4",
                      "--num-cpus", "2", "--scheduler", "asha"]) == 0
    return out


# --- no Ray running -----------------------------------------------------------------------------
def test_space_file_maps_onto_train_config_and_student_arguments(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"seeds": [3, 4], "subjects": [1, 2], "metric": "val_top1",
                                "params": {"student": {"choice": ["cnn", "eegnet"]}, "nperseg": 32, "log": True,
                                           "dropout": 0.2, "width": 16.0, "epochs": {"randint": [2, 6]}}}))
    space = load_space(path)
    assert space.grid_size == 4 and space.mode == "max" and space.max_epochs() == 5
    params = {"student": "cnn", "nperseg": 32, "log": True, "dropout": 0.2, "width": 16.0, "epochs": 3, "seed": 4,
              "subject": 2}
    cnn = train_config(params, sfreq=500.0, threads=2)
    assert (cnn.seed, cnn.epochs, cnn.threads) == (4, 3, 2)
    assert (cnn.spectrogram.nperseg, cnn.spectrogram.log, cnn.spectrogram.sfreq) == (32, True, 500.0)
    assert cnn.student_kwargs == {"dropout": 0.2, "width": 16}
    eegnet = train_config({**params, "student": "eegnet"}, sfreq=500.0)
    assert eegnet.student_kwargs == {}  # the braindecode wrapper names neither dropout nor width
    # a configuration keeps its name across subjects and seeds
    assert config_id(params) == config_id({**params, "seed": 0, "subject": 1}) != config_id({**params, "lr": 1e-3})


@pytest.mark.parametrize("text, message", [
    ("params: {lr: {gaussian: [0, 1]}}", "a distribution is one of"),
    ("params: {learning_rate: 0.1}", "unknown parameter 'learning_rate'"),
    ("params: {student: transformer}", "student 'transformer' unknown"),
    ("params: {lr: {loguniform: [0, 1]}}", "loguniform needs low > 0"),
    ("subjects: [one]\nparams: {}", "'subjects' must be"),
    ("params: [lr]\n", "'params' must map"),
    ("params: {lr: [1, 2\n", "not valid YAML"),
])
def test_bad_space_file_is_a_one_line_error_with_rc_2(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert bci_train(["sweep", "--data", TINY_SPEC, "--space", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bci-train sweep: error: ") and message in err and "\n" not in err


def test_unreachable_address_bad_trial_count_and_export_of_no_sweep_are_one_line_errors(tmp_path, space_file,
                                                                                         capsys):
    port = _free_port()  # nothing listens there
    args = ["sweep", "--data", TINY_SPEC, "--space", str(space_file), "--out", str(tmp_path / "a")]
    assert bci_train([*args, "--address", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bci-train sweep: error: cannot reach a Ray cluster at 127.0.0.1:{port}") and "\n" not in err
    assert bci_train(["sweep", "--data", TINY_SPEC, "--space", str(space_file), "--out", str(tmp_path / "b"),
                      "--trials", "3"]) == 2
    assert "not a positive multiple of the space's grid" in capsys.readouterr().err
    assert bci_train(["sweep", "--out", str(tmp_path / "nothing"), "--resume"]) == 2
    assert "holds no sweep to resume" in capsys.readouterr().err
    assert bci_train(["export", str(tmp_path), "--best"]) == 2
    assert capsys.readouterr().err.startswith("bci-train export: error: ")


def test_spread_and_paired_comparison_match_scipy():
    values = [0.31, 0.35, 0.28, 0.40]
    s = spread(values)
    half = stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2
    assert s["n"] == 4 and s["mean"] == pytest.approx(np.mean(values))
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((np.mean(values) - half, np.mean(values) + half))
    assert math.isnan(spread([0.5])["sd"])
    a, b = {0: 0.5, 1: 0.6, 2: 0.55, 7: 0.9}, {0: 0.4, 1: 0.45, 2: 0.5}  # seed 7 is not shared
    p = paired(a, b)
    assert p["seeds"] == [0, 1, 2] and p["mean"] == pytest.approx(0.1)
    assert p["p"] == pytest.approx(stats.ttest_rel([0.5, 0.6, 0.55], [0.4, 0.45, 0.5]).pvalue)


def test_summary_chooses_on_validation_and_round_trips_through_csv(tmp_path):
    def row(i, cfg, seed, val, test, status="done"):
        return {"trial_id": f"t{i}", "status": status, "config_id": cfg, "subject": 1, "seed": seed, "epochs_run": 3,
                "best_epoch": 3, "val_loss": val, "val_top1": 0.5, "test_top1": test, "test_top5": 0.9,
                "run_dir": f"t{i}", "params": {"lr": 0.001 if cfg == "a" else 0.01, "student": "cnn"}}

    # "a" has the lower validation loss, "b" the higher test accuracy: "a" must win
    rows = [row(0, "a", 0, 1.0, 0.30), row(1, "a", 1, 1.1, 0.32), row(2, "b", 0, 1.5, 0.50),
            row(3, "b", 1, 1.6, 0.52), row(4, "c", 0, 2.0, math.nan, "stopped early")]
    md = summary_markdown(rows, {"dir": "d", "data": "x", "split": "by-image", "space": "s.yaml", "configurations": 3,
                                 "subjects": [1], "seeds": [0, 1], "scheduler": "asha", "metric": "val_loss",
                                 "mode": "min"})
    best = md.split("## Best per subject")[1].split("##")[0]
    assert "`a`" in best and "`b`" not in best
    assert "4 done, 1 stopped early, 0 failed, 0 unfinished" in md
    assert "| 1 | `a` | `b` | 2 | -0.200 ± 0.000" in md  # paired over both shared seeds
    write_csv(rows, tmp_path / "sweep.csv")
    back = read_csv(tmp_path / "sweep.csv")
    assert [r["config_id"] for r in back] == ["a", "a", "b", "b", "c"]
    assert back[0]["params"] == {"student": "seed", "lr": 0.001} and math.isnan(back[4]["test_top1"])  # cnn: old name


def _row(i: int, student: str, val: float, status: str = "done") -> dict:
    return {"trial_id": f"t{i}", "status": status, "config_id": f"c{i}", "subject": 1, "seed": 0, "epochs_run": 3,
            "best_epoch": 3, "val_loss": val, "val_top1": 0.5, "test_top1": 0.4, "test_top5": 0.9, "run_dir": f"t{i}",
            "params": {"student": student, "lr": 0.001}}


def test_best_run_picks_the_best_finished_trial_of_any_student(tmp_path):
    """A sweep over seed and phase (not the old name ``cnn``) exports its best trial; ``cnn`` rows read as
    ``seed`` (was: "no finished CNN trial")."""
    from offline_training.sweep.runner import MANIFEST, SweepConfig, SweepError, best_run

    (tmp_path / MANIFEST).write_text(json.dumps(SweepConfig(data=TINY_SPEC, out=str(tmp_path)).to_dict()))
    write_csv([_row(0, "seed", 1.2), _row(1, "phase", 0.9), _row(2, "eegnet", 0.5, "failed"), _row(3, "cnn", 1.0)],
              tmp_path / "sweep.csv")
    run_dir, sweep = best_run(tmp_path)
    assert run_dir == tmp_path.resolve() / "t1" and sweep["trial"] == "t1" and sweep["value"] == 0.9
    assert [r["params"]["student"] for r in read_csv(tmp_path / "sweep.csv")] == ["seed", "phase", "eegnet", "seed"]
    write_csv([_row(0, "phase", 0.5, "failed")], tmp_path / "sweep.csv")
    with pytest.raises(SweepError, match="no finished trial to export"):
        best_run(tmp_path)


def test_the_sweep_and_the_cli_share_one_soft_label_function_that_checks_the_classes(tmp_path):
    from safetensors.numpy import save_file

    import offline_training.commands.fit as fit_command
    import offline_training.commands.run as run_command
    import offline_training.sweep.runner as sweep
    from offline_training.datasets import load_trials
    from offline_training.training.soft_labels import soft_labels_for

    assert sweep.soft_labels_for is fit_command.soft_labels_for is run_command.soft_labels_for is soft_labels_for
    trials = load_trials(TINY_SPEC, progress=False)
    cache = tmp_path / "teacher.safetensors"
    ids = sorted(set(trials.image_ids))
    save_file({"probabilities": np.full((len(ids), 2), 0.5, np.float32)}, str(cache),
              metadata={"image_ids": json.dumps(ids), "class_names": json.dumps(["a", "b"]), "teacher": "t"})
    with pytest.raises(ValueError, match="made for other classes"):  # the sweep's twin lacked this check
        soft_labels_for(trials, str(cache), kd=True, without_kd="set kd: false in the space")


def test_progress_in_a_log_file_is_one_line_per_event_without_carriage_returns():
    from offline_training.sweep.progress import SweepProgress

    log = io.StringIO()
    p = SweepProgress(total=3, metric="val_loss", mode="min", stream=log, tty=False)
    p.started("t1", {"subject": 1, "seed": 0, "student": "cnn", "lr": 0.001})
    for epoch, loss in ((1, 1.5), (2, 1.2)):
        p.result("t1", {"epoch": epoch, "val_loss": loss})
    p.finished("t1", "done", {"epoch": 2, "val_loss": 1.2, "test_top1": 0.4})
    p.started("t2", {"subject": 1, "seed": 1})
    p.finished("t2", "stopped early", {"epoch": 1, "val_loss": 1.9})
    p.close()
    text = log.getvalue()
    assert "\r" not in text and len(text.splitlines()) == 4  # events only: no line per epoch
    assert text.splitlines()[-1].endswith("0 running, 1 done, 1 stopped early, 0 failed, 1 pending | "
                                          "best val_loss 1.2000 (trial t1, epoch 2)")
    tty = io.StringIO()
    q = SweepProgress(total=2, metric="val_top1", mode="max", stream=tty, tty=True, min_interval=0.0)
    q.started("t1", {})
    q.result("t1", {"epoch": 1, "val_top1": 0.3})
    assert tty.getvalue().endswith("\r\x1b[K[sweep] 1 running, 0 done, 0 stopped early, 0 failed, 1 pending | "
                                   "best val_top1 0.3000 (trial t1, epoch 1)")


# --- a real Ray ---------------------------------------------------------------------------------
def test_local_sweep_completes_and_its_best_trial_exports_a_model_the_decoder_loads(local_sweep, tmp_path):
    from bci_stream.live.decoder import Decoder

    rows = read_csv(local_sweep / "sweep.csv")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"done"}
    assert len({r["config_id"] for r in rows}) == 2 and {r["seed"] for r in rows} == {0, 1}
    for r in rows:  # every trial's run folder is kept, in Tune's trial folder
        run = local_sweep / r["run_dir"]
        assert {"model.safetensors", "metrics.json", "run.json", "params.json", "result.json"} <= {
            p.name for p in run.iterdir()}
        info = json.loads((run / "run.json").read_text())
        assert info["subject"] == 1 and info["sweep"]["trial"] == r["trial_id"]
        assert [h["epoch"] for h in info["history"]] == [1]
    md = (local_sweep / "sweep.md").read_text()
    assert "## Best per subject" in md and "## Paired comparisons" in md and "scheduler asha" in md

    out = tmp_path / "best.onnx"
    assert bci_train(["export", str(local_sweep), "--best", "--out", str(out)]) == 0
    card = ModelCard.from_onnx(out)
    sweep = card.architecture["sweep"]
    best = min((r for r in rows), key=lambda r: r["val_loss"])
    assert sweep["dir"] == str(local_sweep.resolve()) and sweep["trial"] == best["trial_id"]
    assert sweep["metric"] == "val_loss" and sweep["value"] == pytest.approx(best["val_loss"])
    assert card.training_data == f"{TINY_SPEC} (subject 1 only)"
    decoder = Decoder(out, providers="cpu")
    probs = decoder.classify(np.random.default_rng(0).standard_normal(
        (card.n_channels, card.window_samples)).astype(np.float32) * 10)
    assert probs.shape == (5,) and probs.sum() == pytest.approx(1, abs=1e-4)


def test_an_interrupted_sweep_resumes_to_the_results_of_an_uninterrupted_one(local_sweep, space_file, tmp_path,
                                                                            capsys):
    out = tmp_path / "interrupted"
    args = ["sweep", "--out", str(out), "--num-cpus", "2"]
    # --stop-after ends the session through Tune's own interruption path (the handler Ctrl-C reaches)
    assert bci_train([*args, "--data", TINY_SPEC, "--space", str(space_file), "--trials", "4", "--stop-after", "1"]) == 0
    first = read_csv(out / "sweep.csv")
    assert 1 <= sum(r["status"] == "done" for r in first) < 4 and any(r["status"] == "unfinished" for r in first)
    assert "--resume" in capsys.readouterr().out
    assert bci_train([*args, "--resume"]) == 0
    resumed = read_csv(out / "sweep.csv")
    assert [r["trial_id"] for r in resumed] == [r["trial_id"] for r in first]  # the same trials, continued
    assert _results(resumed) == _results(read_csv(local_sweep / "sweep.csv"))


def test_a_ray_start_cluster_at_address_gives_the_same_trial_results(local_sweep, space_file, tmp_path):
    port = _free_port()
    # a cluster with token authentication (Ray's default), its token handed to the client as Ray documents
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    ray_bin = Path(sys.executable).parent / "ray"
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short (socket paths), and /tmp/ray stays untouched
    head = subprocess.Popen([str(ray_bin), "start", "--head", "--block", "--port", str(port), "--num-cpus", "2",
                             "--node-ip-address", "127.0.0.1", "--include-dashboard=false", "--disable-usage-stats",
                             "--temp-dir", temp],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and head.poll() is None, "ray start --head did not come up"
                time.sleep(0.2)
        out = tmp_path / "cluster"
        done = subprocess.run([sys.executable, "-m", "offline_training.cli", "sweep", "--data", TINY_SPEC, "--space",
                               str(space_file), "--out", str(out), "--trials", "4", "--address", f"127.0.0.1:{port}"],
                              env=env, capture_output=True, text=True, timeout=240, cwd=REPO)
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"on 127.0.0.1:{port}" in done.stdout and "\r" not in done.stdout  # a log, not a terminal
    finally:
        head.send_signal(signal.SIGTERM)  # --block: ray start stops every process it started
        head.wait(60)
        shutil.rmtree(temp, ignore_errors=True)
    # 1-epoch trials: ASHA has no rung to stop at, so the sets must match exactly
    assert _results(read_csv(out / "sweep.csv")) == _results(read_csv(local_sweep / "sweep.csv"))


def test_space_defaults_are_one_pooled_run_per_seed():
    space = SweepSpace.from_dict({"params": {"lr": 0.001}})
    assert space.subjects == ("all",) and space.seeds == (0,) and space.metric == "val_loss"
