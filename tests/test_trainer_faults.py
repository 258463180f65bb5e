"""Foreign inputs to the trainer end in one line naming the cause (issue 22): non-finite samples, a loss
that diverges, spec typos, values that are not numbers, ``--resume`` of another run, single-class data,
splits past the data, warnings, hostile pickles of any protocol."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from bci_stream.cli import main as bci_stream
from bci_stream.contract.trials import Trials
from bci_stream.io.eegimagenet import load_eegimagenet
from bci_stream.io.recording import RecordingError
from offline_training.cli import main as bci_train
from offline_training.datasets import load_trials

TINY = "phantom:subjects=1,classes=3,channels=4,images=4,seed=0"


def _fif(path: Path, nan_at: tuple[float, ...] = (), classes: tuple[str, ...] = ("a", "b")) -> Path:
    """4 channels at 250 Hz for 40 s, a marker every 0.5 s cycling through ``classes`` (class "a" with an
    evoked bump), NaN samples 0.2 s after the markers at ``nan_at`` seconds (inside the default window)."""
    import mne

    rng = np.random.default_rng(0)
    sfreq, n = 250, 250 * 40
    data = rng.normal(0, 10e-6, (4, n))
    onsets = np.arange(sfreq, n - sfreq, sfreq // 2)
    names = [classes[i % len(classes)] for i in range(len(onsets))]
    for onset, name in zip(onsets, names):
        if name == "a":
            data[:, onset + 20 : onset + 60] += 20e-6
    for t in nan_at:
        data[:, int(t * sfreq) + 50 : int(t * sfreq) + 55] = np.nan
    raw = mne.io.RawArray(data, mne.create_info(["Cz", "Pz", "Oz", "Fz"], sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations(onsets / sfreq, 0.0, names))
    raw.save(path, verbose="error")
    return path


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- 8. non-finite data, non-finite loss -------------------------------------------------------------
def test_trials_with_nan_samples_are_dropped_and_counted_and_the_run_trains(tmp_path, capsys):
    fif = _fif(tmp_path / "nan_raw.fif", nan_at=(5.0, 12.5, 20.0))
    out = tmp_path / "run"
    assert bci_train(["fit", "--data", f"mne:{fif},classes=auto", "--epochs", "1", "--no-kd", "--out", str(out)]) == 0
    assert "dropped 3: trials with NaN samples: 3" in capsys.readouterr().out
    info = json.loads((out / "run.json").read_text())
    assert info["dropped"] == {"trials with NaN samples": 3}
    assert all(np.isfinite([h["train_loss"], h["val_loss"]]).all() for h in info["history"])


def test_dropping_non_finite_trials_keeps_the_loader_s_splits_on_the_same_trials():
    eeg = np.zeros((6, 2, 4), np.float32)
    eeg[1, 0, 2], eeg[4, 1, 0] = np.nan, np.inf
    trials = Trials(eeg=eeg, labels=[0, 1, 0, 1, 0, 1], image_ids=list("abcdef"), subjects=[1] * 6, runs=[0] * 6,
                    sfreq=100.0, ch_names=["C3", "C4"], class_ids=["x", "y"], class_names=["x", "y"],
                    splits={"by-image": {"train": np.array([0, 1, 2]), "val": np.array([3]), "test": np.array([4, 5])}})
    kept = trials.without_non_finite()
    assert kept.image_ids.tolist() == ["a", "c", "d", "f"]
    assert kept.dropped == {"trials with NaN samples": 1, "trials with infinite samples": 1}
    assert {part: kept.image_ids[idx].tolist() for part, idx in kept.splits["by-image"].items()} == {
        "train": ["a", "c"], "val": ["d"], "test": ["f"]}
    eeg[:] = np.nan
    with pytest.raises(ValueError, match="every trial holds NaN"):
        trials.without_non_finite()


def test_a_training_run_whose_loss_goes_non_finite_stops_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    rc = bci_train(["fit", "--data", TINY, "--epochs", "2", "--lr", "1e30", "--out", str(out)])
    assert rc == 2
    line = _one_line(capsys.readouterr().err)
    assert "training diverged at epoch 1" in line and "--lr" in line and "model.safetensors" not in line



def test_a_batch_whose_loss_is_not_finite_is_skipped_and_most_skipped_stops_the_run():
    """One non-finite batch loss takes no optimiser step (the weights stay finite and the epoch goes on);
    an epoch where most batches are skipped stops the run in one line."""
    from offline_training.training.config import TrainConfig
    from offline_training.training.fit import (
        Normaliser,
        Prepared,
        TrainingDiverged,
        check_finite,
        train_epoch,
    )
    from offline_training.training.objectives import ClassesObjective

    x = np.random.default_rng(0).standard_normal((8, 1, 1, 4)).astype(np.float32)
    x[5] = np.inf  # the batch holding trial 5 has an infinite logit, so a NaN loss
    labels = np.array([0, 1] * 4)
    config = TrainConfig(student="seed", kd=False, batch_size=2, lr=0.1)
    objective = ClassesObjective(config)
    objective.bind(None, labels, torch.device("cpu"))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    data = Prepared(x, Normaliser(np.zeros((1, 1, 1), np.float32), np.ones((1, 1, 1), np.float32)), 0, 4)
    loss, skipped = train_epoch(model, optimizer, torch.amp.GradScaler("cpu", enabled=False), data, objective, config,
                                0, np.arange(8), torch.device("cpu"))
    assert skipped == 1 and np.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    check_finite({"epoch": 1, "train_loss": loss, "val_loss": 1.0, "skipped_batches": 1}, config, n_batches=4)
    with pytest.raises(TrainingDiverged, match="3 of 4 batches with a non-finite loss"):
        check_finite({"epoch": 1, "train_loss": loss, "val_loss": 1.0, "skipped_batches": 3}, config, n_batches=4)

# --- 12. spec keys and values, --resume ----------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    ("classes=auto,subjet=1", "unknown key 'subjet' (did you mean 'subject'?)"),
    ("clases=auto", "unknown key 'clases' (did you mean 'classes'?)"),
    ("classes=auto,tmin=abc", "tmin='abc' is not a number"),
    ("classes=auto,eeg_stream=EEG", "eeg_stream= does not apply to MNE files (their options: "),
])
def test_a_recording_spec_s_bad_key_or_value_is_one_line_naming_the_key(tmp_path, capsys, options, message):
    fif = _fif(tmp_path / "x_raw.fif")
    assert bci_train(["fit", "--data", f"mne:{fif},{options}", "--no-kd", "--out", str(tmp_path / "r")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert message in line and "TypeError" not in line


@pytest.mark.parametrize("spec, message", [
    ("phantom:clases=4", "unknown phantom option 'clases' (did you mean 'classes'?)"),
    ("phantom:subjects=x", "subjects='x' is not an integer"),
    ("things:/nowhere,averag=1", "unknown key 'averag' (did you mean 'average'?)"),
    ("eegimagenet:/nowhere.pth,subjet=1", "unknown key 'subjet' (did you mean 'subject'?)"),
])
def test_other_loaders_name_the_key_too(tmp_path, capsys, spec, message):
    assert bci_train(["fit", "--data", spec, "--out", str(tmp_path / "r")]) == 2
    assert message in _one_line(capsys.readouterr().err)


def test_known_keys_come_from_the_loader_s_signature():
    from offline_training.datasets.options import check_keys

    def loader(path: str, tmin: str = "0", events: str | None = None, preprocess=None) -> None: ...

    check_keys("k:x", loader, {"tmin": "0", "events": "e.tsv"})  # a key the loader gained: known at once
    with pytest.raises(ValueError, match=r"unknown key 'event' \(did you mean 'events'\?\); known: events, tmin$"):
        check_keys("k:x", loader, {"event": "e.tsv"})


def test_resume_on_a_run_of_other_data_or_an_older_checkpoint_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert bci_train(["fit", "--data", TINY, "--epochs", "1", "--out", str(out)]) == 0
    other = TINY.replace("classes=3", "classes=4")
    capsys.readouterr()
    assert bci_train(["fit", "--data", other, "--epochs", "2", "--resume", "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--resume" in line and "on other data" in line and "size mismatch" not in line
    state = json.loads((out / "train_state.json").read_text())
    state.pop("identity")  # a checkpoint written before identities were saved
    (out / "train_state.json").write_text(json.dumps(state))
    assert bci_train(["fit", "--data", other, "--epochs", "2", "--resume", "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "is of another model (size mismatch for" in line and "Error(s) in loading" not in line


# --- 13. one class, splits past the data -------------------------------------------------------------
def test_a_single_class_data_set_is_refused(tmp_path, capsys):
    fif = _fif(tmp_path / "one_raw.fif", classes=("a",))
    assert bci_train(["fit", "--data", f"mne:{fif},classes=auto", "--no-kd", "--out", str(tmp_path / "r")]) == 2
    captured = capsys.readouterr()
    assert "at least two classes" in _one_line(captured.err) and "p = " not in captured.out
    assert not (tmp_path / "r" / "metrics.json").exists()


def _eegimagenet(tmp_path: Path, splits: dict) -> str:
    rng = np.random.default_rng(1)
    dataset = [{"eeg": torch.from_numpy(rng.standard_normal((8, 500)).astype(np.float32)), "image": i,
                "label": i % 2, "subject": 1} for i in range(8)]
    torch.save({"dataset": dataset, "labels": ["n02389026", "n03888257"], "images": [f"n0{i}_{i}" for i in range(8)]},
               tmp_path / "eeg.pth")
    torch.save({"splits": [splits]}, tmp_path / "splits.pth")
    return f"eegimagenet:{tmp_path / 'eeg.pth'},splits={tmp_path / 'splits.pth'}"


def test_a_splits_file_indexing_past_the_data_is_refused(tmp_path, capsys):
    spec = _eegimagenet(tmp_path, {"train": [0, 1, 2, 3, 99], "val": [4, 5], "test": [6, 7]})
    with pytest.raises(RecordingError, match=r"'train' indexes trial 99 but .* holds 8 trials"):
        load_trials(spec)
    assert bci_train(["fit", "--data", spec, "--no-kd", "--out", str(tmp_path / "r")]) == 2
    assert "indexes trial 99" in _one_line(capsys.readouterr().err)
    ok = load_trials(_eegimagenet(tmp_path, {"train": [0, 1, 2, 3], "val": [4, 5], "test": [6, 7]}))
    assert ok.splits["by-image"]["test"].tolist() == [6, 7]


def test_a_split_whose_indices_lie_outside_the_trials_is_refused():
    from offline_training.training.splits import SplitError, check_split

    trials = load_trials(TINY)
    with pytest.raises(SplitError, match="indexes trials outside 0..11"):
        check_split(trials, {"train": np.arange(8), "val": np.array([8, 9]), "test": np.array([10, 12])}, "by-image")


# --- 14. warnings, --subject, hostile pickles ----------------------------------------------------------
def test_warnings_are_one_line_each_message_once(capsys):
    from bci_stream.errors import run_reporting_errors

    def work() -> int:
        warnings.warn("the data look\nodd", UserWarning, stacklevel=1)
        warnings.warn("the data look\nodd", UserWarning, stacklevel=1)  # another line, the same message
        return 0

    assert run_reporting_errors("bci-train", "fit", False, work) == 0
    assert capsys.readouterr().err == "bci-train: warning: the data look odd\n"


def test_subject_means_of_an_undefined_kappa_raise_no_warning():
    from offline_training.experiments.evaluate import evaluate

    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Mean of empty slice" was a RuntimeWarning
        out = evaluate(probs, np.array([0, 0, 1, 1]), np.array([1, 1, 2, 2]), "by-image")
    assert np.isnan(out["subject_mean"]["kappa"]) and out["subject_mean"]["top1"] == 1.0


def test_replay_subject_is_refused_for_a_file_that_is_not_eegimagenet(tmp_path, capsys):
    assert bci_stream(["replay", str(tmp_path / "x.fif"), "--subject", "2"]) == 2
    assert "--subject" in _one_line(capsys.readouterr().err)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_hostile_pickle_of_any_protocol_names_the_call_it_asked_for(tmp_path, capsys, protocol):
    path = tmp_path / "evil.pth"
    torch.save({"dataset": [_Exploit()], "labels": [], "images": []}, path, pickle_protocol=protocol)
    with pytest.raises(RecordingError, match=r"refused to load: it asks to call posix\.system") as err:
        load_eegimagenet(path)
    assert "corrupt" not in str(err.value) and "not a plain tensor file" in str(err.value)
    assert bci_train(["fit", "--data", f"eegimagenet:{path}", "--out", str(tmp_path / "r")]) == 2
    assert "posix.system" in _one_line(capsys.readouterr().err)


def test_a_plain_protocol_4_tensor_file_is_said_as_such(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"dataset": [{"eeg": torch.zeros(2, 3)}], "labels": [], "images": []}, path, pickle_protocol=4)
    with pytest.raises(RecordingError, match="pickle protocol 4 or 5"):
        load_eegimagenet(path)
