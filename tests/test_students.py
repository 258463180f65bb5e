"""Every student on a tiny phantom, through the real train → export → Decoder path (braindecode's
``test_integration.py`` style), and the references, controls and statistics around them."""

from __future__ import annotations

import numpy as np
import pytest

from bci_stream.live.decoder import Decoder
from bci_stream.sources.phantom import Phantom, PhantomConfig
from offline_training.experiments import pipeline
from offline_training.experiments.pipeline import lda_on_split, train_and_test
from offline_training.students import STUDENTS, build_from_card_architecture
from offline_training.training.export import export_onnx
from offline_training.training.fit import TrainConfig, feature_kind, model_inputs
from tests.conftest import TINY_PHANTOM


@pytest.fixture(scope="module")
def tiny():
    phantom = Phantom(PhantomConfig(**TINY_PHANTOM))
    return phantom, phantom.trials()


@pytest.mark.parametrize("student", sorted(STUDENTS))
@pytest.mark.parametrize("kd", [True, False])
def test_every_student_trains_exports_and_decodes_live_as_offline(tiny, tmp_path, student, kd):
    phantom, trials = tiny
    config = TrainConfig.for_student(student, epochs=2, seed=0, kd=kd)
    metrics = train_and_test(trials, "by-image", config, tmp_path, trials.soft_labels if kd else None,
                             "phantom" if kd else "", oracle=phantom.oracle_probabilities, progress=False)
    everything = trials.splits["by-image"]["test"]  # top-1 is what the saved model gives on the test split
    hits = pipeline.test_probabilities(tmp_path, trials, everything).argmax(1) == trials.labels[everything]
    assert metrics["split"] == "by-image" and metrics["top1"] == pytest.approx(hits.mean())
    lo, hi = metrics["top1_ci"]
    assert lo <= metrics["top1"] <= hi and hi - lo > 0
    assert metrics["oracle_kind"] == "full" and metrics["oracle_top1"] > 0.5
    path, diff = export_onnx(tmp_path, tmp_path / "model.onnx")
    assert diff < 1e-4
    decoder = Decoder(path, providers="cpu")
    card = decoder.card
    assert card.feature_kind == feature_kind(config) and card.architecture["kd"] is kd
    from offline_training.training.fit import load_model

    rebuilt = build_from_card_architecture(card.architecture)  # the card alone rebuilds the trained network
    trained = load_model(tmp_path)[0]
    assert {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in trained.state_dict().items()}
    test = trials.splits["by-image"]["test"][:6]
    start = card.offset_samples
    live = np.stack([decoder.classify(trials.eeg[i][:, start : start + card.window_samples]) for i in test])
    np.testing.assert_allclose(live, pipeline.test_probabilities(tmp_path, trials, test), atol=2e-5)


def test_old_cnn_runs_load_as_the_seed_student(tiny, tmp_path):
    import json

    from offline_training.training.fit import load_model

    _, trials = tiny
    train_and_test(trials, "by-image", TrainConfig(student="seed", epochs=1), tmp_path, trials.soft_labels, progress=False)
    info = json.loads((tmp_path / "run.json").read_text())
    info["train_config"]["student"] = "cnn"  # a run folder from before the rename
    for key in ("features", "erp", "jitter"):
        info["train_config"].pop(key)
    for key in ("mode", "fmax"):
        info["train_config"]["spectrogram"].pop(key)
    (tmp_path / "run.json").write_text(json.dumps(info))
    model, _, config, _ = load_model(tmp_path)
    assert type(model).__name__ == "SpectrogramCNN" and feature_kind(config) == "spectrogram"
    export_onnx(tmp_path, tmp_path / "old.onnx")


def test_onset_jitter_widens_training_inputs_only(tiny, tmp_path):
    _, trials = tiny
    config = TrainConfig.for_student("shallow", epochs=1, jitter=0.016, kd=False)
    wide, plain = model_inputs(trials.subset(np.arange(4)), config), model_inputs(trials.subset(np.arange(4)), config, jitter=False)
    assert wide.shape[-1] == plain.shape[-1] + 4  # 2 erp samples (8 ms each at 1 kHz / 8) each side
    np.testing.assert_allclose(wide[..., 2:-2], plain, rtol=1e-5, atol=1e-5)
    metrics = train_and_test(trials, "by-image", config, tmp_path, progress=False)
    assert metrics["n"] == len(trials.splits["by-image"]["test"])
    with pytest.raises(ValueError, match="erp features"):
        model_inputs(trials, TrainConfig(student="seed", jitter=0.01))


def test_lda_reference_learns_the_templates():
    trials = Phantom(PhantomConfig(**{**TINY_PHANTOM, "images_per_class": 40})).trials()
    metrics = lda_on_split(trials, "by-image", TrainConfig(student="seed"))
    assert metrics["top1"] > 2 / trials.n_classes and metrics["split"] == "by-image", metrics["top1"]


def test_drift_probe_is_at_chance_on_a_clean_design_and_finds_a_block_confound():
    from offline_training.experiments.controls import drift_probe

    config = dict(n_channels=16, n_classes=5, images_per_class=30, n_subjects=1, seed=1)
    chance = 1 / 5
    for drift, check in ((0.0, lambda acc: acc < chance + 0.2), (40.0, lambda acc: acc > chance + 0.3)):
        trials = Phantom(PhantomConfig(**config, drift_uv=drift)).trials()
        split = trials.splits["by-image"]
        acc = (drift_probe(trials, split, (20, 460)).argmax(1) == trials.labels[split["test"]]).mean()
        assert check(acc), (drift, acc)


def test_shuffled_control_permutes_within_parts_only(tiny):
    from offline_training.experiments.controls import shuffled_within

    _, trials = tiny
    split = trials.splits["by-image"]
    shuffled = shuffled_within(trials.labels, split, seed=0)
    np.testing.assert_array_equal(shuffled[split["test"]], trials.labels[split["test"]])
    for part in ("train", "val"):
        assert sorted(shuffled[split[part]]) == sorted(trials.labels[split[part]])
    assert (shuffled[split["train"]] != trials.labels[split["train"]]).mean() > 0.5


def test_paired_statistics():
    from offline_training.experiments.stats import mcnemar, paired_differences

    a = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 1] * 10, bool)
    b = np.array([1, 0, 0, 0, 0, 0, 1, 1, 0, 1] * 10, bool)
    result = mcnemar(a, b)
    assert result["a_only"] == 50 and result["b_only"] == 0 and result["p"] < 1e-10
    assert mcnemar(a, a)["p"] == 1.0
    d = paired_differences([0.5, 0.6, 0.55, 0.52], [0.4, 0.45, 0.5, 0.41])
    assert d["mean"] == pytest.approx(0.1025) and d["ci"][0] > 0 and d["p_t"] < 0.05 and d["p_perm"] == 0.125


def test_continuous_accuracy_peaks_where_the_window_covers_the_response(tmp_path):
    """Decisions every hop on a live session, scored against the marker that caused them: at chance while
    the window holds the previous stimulus, high once it covers the response it was trained on."""
    from offline_training.experiments.continuous import (
        ContinuousConfig,
        continuous_accuracy,
        continuous_markdown,
    )

    config = PhantomConfig(**{**TINY_PHANTOM, "images_per_class": 40})
    trials = Phantom(config).trials()
    train_and_test(trials, "by-image", TrainConfig.for_student("phase", epochs=8), tmp_path, trials.soft_labels,
                   progress=False)
    path, _ = export_onnx(tmp_path, tmp_path / "model.onnx")
    result = continuous_accuracy(str(path), config, ContinuousConfig(seconds=20, subjects=(1, 2)))
    assert result["decisions"] > 1500 and len(result["lag"]) == 25
    early = np.nanmax(result["top1"][1:6])  # the window still mostly holds the previous stimulus
    assert result["aligned_top1"] > result["chance"] + 0.3 and result["aligned_top1"] > early + 0.3, result
    assert "Aligned lag" in continuous_markdown(result)


def test_leave_subject_out_holds_out_the_images_too_when_subjects_share_them(tiny):
    from offline_training.training.splits import make_split

    _, trials = tiny
    split = make_split(trials, "loso-2")  # checked: non-empty, disjoint, no shared image
    assert set(trials.subjects[split["test"]]) == {2} and 2 not in set(trials.subjects[split["train"]])
    assert not set(trials.image_ids[split["test"]]) & set(trials.image_ids[split["train"]])


def test_one_registry_entry_is_a_student_everywhere(monkeypatch):
    """Adding a student is one StudentSpec: the command line's choices, report labels, the builder, its
    arguments and compare's order all read it (no second list to edit)."""
    import argparse

    from offline_training.cli import build_parser
    from offline_training.experiments.pipeline import run_label
    from offline_training.students import registry
    from offline_training.students.build import build_student, student_args

    spec = registry.StudentSpec("spectrogram", description="a second seed CNN", label="seed CNN, twin",
                                builder="offline_training.students.seed_cnn:SpectrogramCNN",
                                arguments=registry.spectrogram_args)
    monkeypatch.setitem(registry.STUDENTS, "twin", spec)
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    choices = {name: a.choices for name, p in commands.items() for a in p._actions if a.dest == "student"}
    assert set(choices) == {"fit", "run", "things-eeg2"} and all("twin" in c for c in choices.values()), choices
    assert run_label("twin", True) == "seed CNN, twin + KD"
    model = build_student("twin", **student_args("twin", (4, 5, 6), 3, 125.0))
    assert type(model).__name__ == "SpectrogramCNN"
    assert sorted(["deep4", "twin", "phase"], key=registry.feature_order) == ["twin", "phase", "deep4"]
