"""Open-vocabulary decoding offline: the by-class split, InfoNCE training against image embeddings,
k-way zero-shot retrieval with the oracle beside it, and the embedding card through export."""

import numpy as np
import pytest

from bci_stream.sources.phantom import Phantom, PhantomConfig
from offline_training.training.splits import SplitError, by_class, check_split, held_out_classes, make_split


@pytest.fixture(scope="module")
def semantic_trials():
    return Phantom(PhantomConfig(n_channels=8, n_classes=16, images_per_class=4, n_subjects=2, seed=1,
                                 semantic=True, embed_dim=16)).trials()


def test_by_class_split_holds_out_whole_classes_deterministically(semantic_trials):
    trials = semantic_trials
    split = make_split(trials, "by-class", seed=0)
    test_classes = set(trials.labels[split["test"]])
    assert len(test_classes) == 10 and len(set(trials.labels[split["val"]])) == 2
    assert not test_classes & set(trials.labels[split["train"]])
    assert set(held_out_classes(trials, split)) == test_classes
    # every trial of a held-out class is tested (all subjects, all images)
    assert len(split["test"]) == np.isin(trials.labels, list(test_classes)).sum()
    again = by_class(trials, seed=0)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    assert set(trials.labels[by_class(trials, seed=1)["test"]]) != test_classes
    with pytest.raises(SplitError, match="needs 2 more"):
        by_class(trials.subset(trials.labels < 12))
    bad = {"train": split["train"][1:], "val": split["val"], "test": np.r_[split["test"], split["train"][:1]]}
    with pytest.raises(SplitError, match="share class"):
        check_split(trials, bad, "by-class")


def test_info_nce_is_symmetric_clip_loss_and_treats_repeats_of_an_image_as_positives():
    import torch

    from offline_training.training.contrastive import embedding_loss, info_nce

    torch.manual_seed(0)
    e = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    scale = torch.tensor(10.0)
    perfect, wrong = info_nce(e, e, scale), info_nce(e.flip(0), e, scale)
    assert perfect < wrong
    ref = 0.5 * (torch.nn.functional.cross_entropy(10 * e @ e.T, torch.arange(6))
                 + torch.nn.functional.cross_entropy((10 * e @ e.T).T, torch.arange(6)))
    assert torch.allclose(perfect, ref)
    # two rows of one image: predicting that image for both is not penalised as a false negative
    twice = torch.cat([e[:1], e[:1], e[2:]])
    groups = torch.tensor([0, 0, 2, 3, 4, 5])
    assert info_nce(twice, twice, scale, groups) < info_nce(twice, twice, scale)
    assert embedding_loss(e * 3, e, scale, None, mse_weight=1.0) == pytest.approx(float(perfect), abs=1e-5)


def test_fit_evaluate_export_round_trip_beats_chance_zero_shot(tmp_path, capsys):
    """The one-command path on an easy semantic phantom: fit (by-class, InfoNCE) → zero-shot metrics with CIs
    and the oracle → evaluate → export with an embedding card whose space names the phantom."""
    import json

    import onnxruntime as ort

    from bci_stream.contract.model_card import ModelCard
    from offline_training.cli import main as bci_train

    run = tmp_path / "run"
    spec = "phantom:subjects=1,classes=16,channels=8,images=12,seed=4,evoked_uv=60,semantic=1,embed_dim=16"
    assert bci_train(["fit", "--data", spec, "--objective", "embedding", "--student", "eegnet", "--epochs", "15",
                      "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "by-class" and metrics["k"] == 10 and metrics["zero_shot"]
    assert metrics["n"] == 120 and len(metrics["top1_ci"]) == 2 and metrics["chance_top1"] == pytest.approx(0.1)
    assert metrics["top1_ci"][0] > 0.1, metrics  # above chance, with its interval
    oracle_hits = metrics["oracle_top1"] * metrics["n"]  # the oracle decoded the same 120 trials, well above chance
    assert oracle_hits == pytest.approx(round(oracle_hits)) and metrics["oracle_top1"] > 2 * metrics["chance_top1"]
    assert metrics["oracle_ratio"] == pytest.approx(metrics["top1"] / metrics["oracle_top1"])
    report = (run / "report.md").read_text()
    assert "10 candidates" in report and "oracle" in report and "No test class was seen in training" in report
    assert bci_train(["evaluate", str(run)]) == 0
    assert json.loads((run / "evaluation.json").read_text())["top1"] == pytest.approx(metrics["top1"])
    assert bci_train(["export", str(run), "--out", str(tmp_path / "m.onnx")]) == 0
    card = ModelCard.from_onnx(tmp_path / "m.onnx")
    spec_ = card.embedding_spec()
    assert card.is_embedding and card.n_outputs == spec_.dim == 16
    assert spec_.space.startswith("phantom:seed=4,dim=16,classes=") and spec_.normalisation == "l2" and spec_.logit_scale > 1
    assert card.split == "by-class" and card.evaluation["k"] == 10 and "top1_ci" in card.evaluation
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].name == "embedding"
    out = session.run(None, {session.get_inputs()[0].name: np.random.randn(3, *card.feature_shape()).astype(np.float32)})[0]
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, rtol=1e-5)
    assert "10-way zero-shot" in capsys.readouterr().out


def test_embedding_objective_without_embeddings_is_one_line_error(tmp_path, capsys):
    from offline_training.cli import main as bci_train

    code = bci_train(["fit", "--data", "phantom:subjects=1,classes=4,channels=8,images=4", "--objective", "embedding",
                      "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "semantic=1" in err[0] and "embed-images" in err[0]


def test_embed_images_caches_open_clip_embeddings_by_file_stem_and_fit_trains_on_them(tmp_path, capsys):
    """A tiny random open_clip model built from a config here, saved as safetensors and loaded back by path;
    the cache (a gallery index) names its space and weights hash, and fit looks trials up in it by image id."""
    import json

    import open_clip
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    from bci_stream.retrieval.index import file_sha256
    from offline_training.cli import main as bci_train
    from offline_training.training.image_embeddings import load_image_embeddings

    name = "bci-test-embed-images-clip"
    config = tmp_path / f"{name}.json"
    config.write_text(json.dumps({"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32,
                                                                   "head_width": 16, "patch_size": 16},
                                  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                                               "layers": 1}}))
    open_clip.add_model_config(str(config))
    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in open_clip.create_model(name, pretrained=None).state_dict().items()},
              str(weights))
    # the phantom's image ids as stimulus files: <synset>/<synset>_<n>.png
    phantom = Phantom(PhantomConfig(n_channels=8, n_classes=14, images_per_class=3, n_subjects=1, seed=2))
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    for synset in phantom.class_ids:
        (images / synset).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(images / synset / f"{synset}_{i}.png")
    cache = tmp_path / "cache.safetensors"
    assert bci_train(["embed-images", str(images), "--model", name, "--pretrained", str(weights),
                      "--model-config", str(config), "--device", "cpu", "--out", str(cache)]) == 0
    loaded = load_image_embeddings(str(cache))
    assert loaded.space == f"open_clip:{name}/tiny.safetensors" and loaded.checkpoint_sha256 == file_sha256(weights)
    assert len(loaded.ids) == 42 and loaded.dim == 16 and f"{phantom.class_ids[0]}_2" in loaded.ids
    np.testing.assert_allclose(np.linalg.norm(loaded.embeddings, axis=1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="no image embedding for 1 image id"):
        loaded.for_trials([loaded.ids[0], "n00000000_7"])
    run = tmp_path / "run"
    assert bci_train(["fit", "--data", "phantom:subjects=1,classes=14,channels=8,images=3,seed=2", "--objective",
                      "embedding", "--embeddings", str(cache), "--student", "eegnet", "--epochs", "1",
                      "--out", str(run)]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["embedding"]["space"] == loaded.space and info["embedding"]["checkpoint_sha256"] == loaded.checkpoint_sha256
    assert "oracle_top1" not in json.loads((run / "metrics.json").read_text())  # no oracle without the semantic phantom
