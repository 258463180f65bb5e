"""The offline trainer on real (small) inputs: loaders, KD, controls, resume, export, CLI."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file

from bci_stream.contract.model_card import ModelCard
from bci_stream.sources.phantom import Phantom, PhantomConfig
from offline_training.cli import main as bci_train
from offline_training.datasets import load_trials, parse_spec
from offline_training.experiments.pipeline import train_and_test
from offline_training.training.fit import TrainConfig, fit, kd_loss, tempered
from offline_training.training.splits import by_block, leave_subject_out, make_split


@pytest.fixture(scope="module")
def small_trials():
    """5 classes x 40 images x 2 subjects: enough test trials for the controls to mean something."""
    return Phantom(PhantomConfig(n_channels=16, n_classes=5, images_per_class=40, n_subjects=2, seed=5,
                                 evoked_uv=60.0)).trials()


def test_kd_loss_is_hinton_and_reduces_to_ce():
    torch.manual_seed(0)
    logits = torch.randn(8, 5, requires_grad=True)
    hard = torch.randint(0, 5, (8,))
    soft = torch.softmax(torch.randn(8, 5), 1)
    ce = torch.nn.functional.cross_entropy(logits, hard)
    assert torch.allclose(kd_loss(logits, hard, soft, alpha=1.0, temperature=4.0), ce)
    assert torch.allclose(kd_loss(logits, hard, None, alpha=0.3, temperature=4.0), ce)
    # a student that already matches the tempered teacher pays no KD term
    teacher_logits = torch.randn(8, 5)
    matched = kd_loss(teacher_logits * 1.0, hard, torch.softmax(teacher_logits, 1), alpha=0.0, temperature=3.0)
    assert matched.abs() < 1e-5
    np.testing.assert_allclose(tempered(soft, 1.0).numpy(), soft.numpy(), rtol=1e-5)
    kd_loss(logits, hard, soft, 0.5, 4.0).backward()
    assert logits.grad.abs().sum() > 0


def test_student_learns_and_shuffled_control_falls_to_chance(small_trials, tmp_path):
    config = TrainConfig(student="seed", epochs=12, patience=12, seed=0)
    real = train_and_test(small_trials, "by-image", config, tmp_path / "real", small_trials.soft_labels,
                          "phantom", progress=False)
    control = train_and_test(small_trials, "shuffled", config, tmp_path / "shuffled", progress=False)
    chance = 1 / small_trials.n_classes
    assert real["split"] == "by-image" and control["split"] == "shuffled"
    assert real["n"] == control["n"] == 40
    assert real["top1"] > 2 * chance, real
    assert control["top1"] < chance + 0.2, control
    for name in ("metrics.json", "report.md", "confusion.png", "model.safetensors", "run.json", "split.json"):
        assert (tmp_path / "real" / name).exists()
    saved = json.loads((tmp_path / "real" / "metrics.json").read_text())
    assert {"split", "top1", "top3", "top5", "per_subject", "subject_mean"} <= set(saved)
    assert "by-image" in (tmp_path / "real" / "report.md").read_text()


def test_resume_continues_exactly(small_trials, tmp_path, recwarn):
    split = make_split(small_trials, "by-image")
    sub = small_trials.subset(np.concatenate([split["train"][:80], split["val"]]))
    s2 = {"train": np.arange(80), "val": np.arange(80, len(sub)), "test": np.arange(80, len(sub))}
    straight = tmp_path / "straight"
    fit(sub, s2, TrainConfig(student="seed", epochs=4, patience=9), straight, sub.soft_labels, progress=False)
    resumed = tmp_path / "resumed"
    fit(sub, s2, TrainConfig(student="seed", epochs=4, patience=9), resumed, sub.soft_labels, progress=False, stop_after=2)
    assert json.loads((resumed / "train_state.json").read_text())["epoch"] == 2
    info = fit(sub, s2, TrainConfig(student="seed", epochs=4, patience=9), resumed, sub.soft_labels, resume=True,
               progress=False).info
    assert [h["epoch"] for h in info["history"]] == [1, 2, 3, 4]
    # the scheduler comes back from its saved state, not by stepping it before any optimizer step
    assert not [w for w in recwarn if "lr_scheduler.step()" in str(w.message)], [str(w.message) for w in recwarn]
    a, b = load_file(straight / "checkpoint.safetensors"), load_file(resumed / "checkpoint.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key  # bit-exact on the CPU


def test_splits_hold_out_what_they_say(small_trials):
    three = Phantom(PhantomConfig(n_channels=8, n_classes=3, images_per_class=6, n_subjects=3)).trials()
    block = by_block(three)
    assert not set(three.runs[block["test"]]) & set(three.runs[block["train"]])
    assert set(three.labels[block["test"]]) == {0, 1, 2}
    with pytest.raises(ValueError, match="at least 3 blocks"):
        by_block(small_trials)
    loso = leave_subject_out(small_trials, 2)
    assert set(small_trials.subjects[loso["test"]]) == {2} and 2 not in set(small_trials.subjects[loso["train"]])
    image = make_split(small_trials, "by-image")
    assert not set(small_trials.image_ids[image["test"]]) & set(small_trials.image_ids[image["train"]])
    with pytest.raises(ValueError, match="unknown split"):
        make_split(small_trials, "by-mood")


def test_export_has_card_dynamic_batch_and_parity(tiny_model):
    card = ModelCard.from_onnx(tiny_model)
    assert card.n_classes == 5 and card.n_channels == 16 and card.window_samples == 440
    assert card.teacher.startswith("phantom") and card.split == "by-image" and "top1" in card.evaluation
    assert card.architecture["student"] == "seed" and card.architecture["kd"] is True  # "cnn" before the rename
    session = ort.InferenceSession(str(tiny_model), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        out = session.run(None, {"spectrogram": np.random.randn(batch, *card.feature_shape()).astype(np.float32)})[0]
        assert out.shape == (batch, 5)
        np.testing.assert_allclose(out.sum(1), 1, rtol=1e-5)


def test_eegimagenet_loader_filters_crops_and_uses_official_splits(tmp_path):
    rng = np.random.default_rng(1)
    lengths = [500, 440, 520, 610, 460, 500, 500, 480]
    dataset = [{"eeg": torch.from_numpy(rng.standard_normal((128, n)).astype(np.float32)), "image": i,
                "label": i % 4, "subject": 1 + i // 4} for i, n in enumerate(lengths)]
    images = [f"n0{i}_{i}" for i in range(8)]
    torch.save({"dataset": dataset, "labels": ["n02389026", "n03888257", "n03584829", "n02607072"], "images": images},
               tmp_path / "eeg_5_95_std.pth")
    torch.save({"splits": [{"train": [0, 1, 2, 3, 5], "val": [6], "test": [4, 7]}]}, tmp_path / "splits.pth")
    trials = load_trials(f"eegimagenet:{tmp_path / 'eeg_5_95_std.pth'},splits={tmp_path / 'splits.pth'}")
    kept = [i for i, n in enumerate(lengths) if 460 <= n <= 600]
    assert trials.eeg.shape == (len(kept), 128, 460)
    assert trials.class_names[:2] == ["sorrel", "parachute"]
    np.testing.assert_array_equal(trials.eeg[0], dataset[0]["eeg"].numpy()[:, :460])
    # split indices point into the kept trials; 1 (440 samples) and 3 (610) are dropped
    assert trials.image_ids[trials.splits["by-image"]["test"]].tolist() == ["n04_4", "n07_7"]
    assert trials.image_ids[trials.splits["by-image"]["train"]].tolist() == ["n00_0", "n02_2", "n05_5"]


def test_own_recording_epochs_by_marker_with_a_mapping_file(tmp_path):
    import mne

    sfreq = 1000.0
    data = np.random.default_rng(0).standard_normal((3, 6000)) * 1e-5
    raw = mne.io.RawArray(data, mne.create_info(["O1", "Oz", "O2"], sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([1.0, 2.0, 3.0, 4.0, 5.8], [0] * 5, ["S 1", "S 2", "S 1", "rest", "S 2"]))
    raw.save(tmp_path / "run1_raw.fif", verbose="error")
    (tmp_path / "map.tsv").write_text("S 1\tsorrel\nS 2\tn03888257\n")
    trials = load_trials(f"mne:{tmp_path / 'run1_raw.fif'},mapping={tmp_path / 'map.tsv'},tmax=0.5")
    assert trials.labels.tolist() == [0, 1, 0]  # "rest" maps to nothing; the last epoch runs off the end
    assert trials.class_ids == ["n02389026", "n03888257"] and trials.class_names == ["sorrel", "parachute"]
    assert trials.dropped == {"markers without a class (rest x1)": 1, "epochs outside the recording (0..0.5 s)": 1}
    assert "dropped 2: markers without a class (rest x1): 1" in trials.summary()
    assert trials.eeg.shape == (3, 3, 500)
    np.testing.assert_allclose(trials.eeg[1], data[:, 2000:2500] * 1e6, rtol=1e-5)


def test_things_eeg2_loader_and_hostile_file(tmp_path):
    d = {"preprocessed_eeg_data": np.random.randn(20, 4, 17, 100).astype(np.float32),
         "ch_names": [f"P{i}" for i in range(17)], "times": np.arange(100) / 100 - 0.2}
    np.save(tmp_path / "preprocessed_eeg_training.npy", d, allow_pickle=True)
    trials = load_trials(f"things:{tmp_path}")
    assert trials.eeg.shape == (80, 17, 100) and trials.sfreq == 100.0 and trials.tmin == pytest.approx(-0.2)
    assert trials.n_classes == 2 and trials.labels[:4].tolist() == [0, 0, 0, 0]
    averaged = load_trials(f"things:{tmp_path},average=1")
    np.testing.assert_allclose(averaged.eeg[0], d["preprocessed_eeg_data"][0].mean(0), rtol=1e-5)

    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    np.save(tmp_path / "evil.npy", np.array({"preprocessed_eeg_data": Evil()}, dtype=object), allow_pickle=True)
    with pytest.raises(Exception, match="refus"):
        load_trials(f"things:{tmp_path / 'evil.npy'}")


def test_spec_parsing_and_errors():
    assert parse_spec("phantom:subjects=2,classes=5") == ("phantom", None, {"subjects": "2", "classes": "5"})
    assert parse_spec("xdf:/data/a.xdf,tmax=0.6") == ("xdf", "/data/a.xdf", {"tmax": "0.6"})
    with pytest.raises(ValueError, match="unknown data kind"):
        load_trials("edf2:/x")  # csv: is a reader now (Muse / eeg-notebooks)
    with pytest.raises(ValueError, match="unknown phantom option"):
        load_trials("phantom:colour=blue")


def test_cli_fit_evaluate_export(tmp_path, capsys):
    run = tmp_path / "run"
    spec = "phantom:subjects=1,classes=4,channels=8,images=10,seed=2"
    assert bci_train(["fit", "--data", spec, "--out", str(run), "--epochs", "2"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "by-image" and {"top1", "top3", "top5", "oracle_top1"} <= set(metrics)
    assert bci_train(["evaluate", str(run)]) == 0
    assert bci_train(["export", str(run), "--out", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    assert "test split 'by-image'" in out and "max abs diff" in out
    assert ModelCard.from_onnx(tmp_path / "m.onnx").n_channels == 8
