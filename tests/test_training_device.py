"""Training on a device (issue 17): --device auto on the CPU here, determinism, memory-mapped inputs,
progress that stays readable in a log, checkpoints that restore the LR scheduler from its state (and refuse one without it)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bci_stream.sources.phantom import Phantom, PhantomConfig
from offline_training.training.device import cuda_works, resolve_device, trial_device
from offline_training.training.fit import EpochProgress, TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny():
    """4 classes x 10 images, 8 channels, 1 subject, with a fixed split."""
    trials = Phantom(PhantomConfig(n_channels=8, n_classes=4, images_per_class=10, n_subjects=1, seed=2,
                                   evoked_uv=60.0)).trials(progress=False)
    n = len(trials)
    split = {"train": np.arange(0, n, 2)[:16], "val": np.arange(1, n, 2), "test": np.arange(1, n, 2)}
    return trials, split


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "checkpoint.safetensors")


def test_two_fits_with_the_same_seed_give_bit_identical_weights_on_the_cpu(tiny, tmp_path):
    trials, split = tiny
    config = TrainConfig(student="seed", epochs=2, patience=9, seed=1, device="cpu")
    fit(trials, split, config, tmp_path / "a", trials.soft_labels, progress=False)
    fit(trials, split, config, tmp_path / "b", trials.soft_labels, progress=False)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_memory_mapped_inputs_train_as_in_memory_ones_and_leave_no_file(tiny, tmp_path):
    trials, split = tiny
    config = TrainConfig(student="seed", epochs=2, patience=9, seed=1, device="cpu")
    fit(trials, split, config, tmp_path / "memory", trials.soft_labels, progress=False)
    fit(trials, split, TrainConfig(student="seed", epochs=2, patience=9, seed=1, device="cpu", memmap_mb=0.0), tmp_path / "mapped",
        trials.soft_labels, progress=False)
    assert not (tmp_path / "mapped" / "inputs.npy").exists()
    a, b = weights(tmp_path / "memory"), weights(tmp_path / "mapped")
    for key in a:  # the chunked float64 statistics may differ from numpy's pairwise sums in the last bit
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_resume_restores_the_scheduler_from_its_state_without_warning(tiny, tmp_path, recwarn):
    trials, split = tiny
    config = TrainConfig(student="seed", epochs=3, patience=9, seed=0, device="cpu")
    fit(trials, split, config, tmp_path / "straight", trials.soft_labels, progress=False)
    fit(trials, split, config, tmp_path / "resumed", trials.soft_labels, progress=False, stop_after=1)
    saved = json.loads((tmp_path / "resumed" / "train_state.json").read_text())
    assert saved["scheduler"]["last_epoch"] == 1 and saved["epoch"] == 1
    fit(trials, split, config, tmp_path / "resumed", trials.soft_labels, resume=True, progress=False)
    assert not [w for w in recwarn if "lr_scheduler.step()" in str(w.message)], [str(w.message) for w in recwarn]
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_checkpoint_without_the_scheduler_is_refused_with_the_way_out(tiny, tmp_path):
    """Only pre-release versions (issue 10) wrote checkpoints without the scheduler's state."""
    trials, split = tiny
    config = TrainConfig(student="seed", epochs=3, patience=9, seed=0, device="cpu")
    fit(trials, split, config, tmp_path / "old", trials.soft_labels, progress=False, stop_after=1)
    state_file = tmp_path / "old" / "train_state.json"
    state = json.loads(state_file.read_text())
    del state["scheduler"]
    state_file.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="no scheduler state.*start a new --out"):
        fit(trials, split, config, tmp_path / "old", trials.soft_labels, resume=True, progress=False)


def test_device_names_resolve_and_a_missing_gpu_is_named():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if cuda_works() else "cpu")
    assert trial_device(0) == "cpu" and trial_device(0.5) == "cuda"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not cuda_works():
        with pytest.raises(ValueError, match="no working CUDA device"):
            resolve_device("cuda")


def test_amp_on_the_cpu_is_ignored_and_trains_in_float32(tiny, tmp_path, caplog):
    trials, split = tiny
    fit(trials, split, TrainConfig(student="seed", epochs=1, seed=1, device="cpu"), tmp_path / "fp32", trials.soft_labels, progress=False)
    info = fit(trials, split, TrainConfig(student="seed", epochs=1, seed=1, device="cpu", amp=True), tmp_path / "amp",
               trials.soft_labels, progress=False).info
    assert info["amp"] is None and info["device"] == "cpu"
    assert "--amp is ignored on the CPU" in caplog.text
    a, b = weights(tmp_path / "fp32"), weights(tmp_path / "amp")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_progress_off_a_terminal_is_one_plain_line_per_epoch(tmp_path):
    with open(tmp_path / "log.txt", "w") as stream:
        bar = EpochProgress("seed+KD", 0, 2, stream=stream)
        for e in (1, 2):
            bar.epoch({"epoch": e, "train_loss": 1.0, "val_loss": 2.0, "val_top1": 0.25, "seconds": 0.5})
        bar.close()
    assert (tmp_path / "log.txt").read_text().splitlines() == [
        f"seed+KD epoch {e}/2: train_loss 1.000 val_loss 2.000 val_top1 0.250 (0.5 s)" for e in (1, 2)]


def test_cli_fit_with_device_auto_into_a_pipe_logs_one_line_per_epoch_and_no_carriage_return(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "offline_training.cli", "fit", "--data",
                           "phantom:subjects=1,classes=4,channels=8,images=10,seed=2", "--out", str(run),
                           "--epochs", "3", "--patience", "9", "--device", "auto"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=300, cwd=tmp_path)
    log = done.stdout.decode()
    assert done.returncode == 0, log
    assert "\r" not in log
    default = TrainConfig().student  # the default student, distilled (the phantom brings its teacher)
    assert len(re.findall(rf"^{default}\+KD epoch \d/3: train_loss", log, flags=re.M)) == 3, log
    info = json.loads((run / "run.json").read_text())
    assert info["device"].startswith("cuda" if cuda_works() else "cpu")
    assert info["train_config"]["device"] == "auto" and len(info["history"]) == 3
    assert {"seconds", "train_seconds"} <= set(info["history"][0])
