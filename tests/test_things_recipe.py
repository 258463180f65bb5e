"""THINGS-EEG2 zero-shot recipe on a tiny THINGS-EEG2-shaped folder built here: the release's layout
(sub-XX/preprocessed_eeg_{training,test}.npy, image_metadata.npy), image ids from the metadata's file names,
200-way-style retrieval among the test images, intra-subject and leave-subject-out, the anchors' table."""

import json

import numpy as np

from bci_stream.retrieval.index import GalleryIndex, save_gallery
from offline_training.cli import main as bci_train
from offline_training.datasets import load_trials
from offline_training.experiments.things_recipe import ANCHORS, table_markdown

TRAIN_CONCEPTS, TEST_CONCEPTS, PER_CONCEPT = 14, 10, 2


def _things_folder(root, rng):
    train_files = [f"{c + 1:05d}_train{c}/train{c}_{i:02d}b.jpg" for c in range(TRAIN_CONCEPTS) for i in range(PER_CONCEPT)]
    test_files = [f"{c + 1:05d}_test{c}/test{c}_01s.jpg" for c in range(TEST_CONCEPTS)]
    meta = {"train_img_files": [f.split("/")[1] for f in train_files],
            "train_img_concepts": [f.split("/")[0] for f in train_files],
            "test_img_files": [f.split("/")[1] for f in test_files],
            "test_img_concepts": [f.split("/")[0] for f in test_files]}
    np.save(root / "image_metadata.npy", meta, allow_pickle=True)
    for s in (1, 2):
        sub = root / "eeg" / f"sub-{s:02d}"
        sub.mkdir(parents=True)
        for part, n_img, reps in (("training", len(train_files), 2), ("test", len(test_files), 3)):
            data = {"preprocessed_eeg_data": rng.standard_normal((n_img, reps, 17, 100)).astype(np.float32),
                    "ch_names": [f"P{i}" for i in range(17)], "times": np.arange(100) / 100 - 0.2}
            np.save(sub / f"preprocessed_eeg_{part}.npy", data, allow_pickle=True)
    stems = [f.split("/")[1][:-4] for f in train_files + test_files]
    e = rng.standard_normal((len(stems), 8)).astype(np.float32)
    cache = GalleryIndex(embeddings=e / np.linalg.norm(e, axis=1, keepdims=True), ids=stems,
                         labels=[f.split("/")[0] for f in train_files + test_files], space="open_clip:test/none",
                         checkpoint_sha256="", thumbnails=None)
    save_gallery(cache, root / "cache.safetensors")


def test_loader_names_images_by_file_stem_and_concepts_from_the_metadata(tmp_path):
    _things_folder(tmp_path, np.random.default_rng(0))
    trials = load_trials(f"things:{tmp_path / 'eeg' / 'sub-01'},part=test,average=1,metadata={tmp_path / 'image_metadata.npy'}")
    assert trials.image_ids[0] == "test0_01s" and trials.class_names[0] == "00001_test0" and trials.n_classes == 10
    assert len(trials) == TEST_CONCEPTS and trials.tmin == -0.2


def test_recipe_runs_intra_and_leave_subject_out_and_prints_the_anchors_table(tmp_path, capsys):
    _things_folder(tmp_path, np.random.default_rng(0))
    out = tmp_path / "runs"
    assert bci_train(["things-eeg2", "--eeg", str(tmp_path / "eeg"), "--metadata", str(tmp_path / "image_metadata.npy"),
                      "--embeddings", str(tmp_path / "cache.safetensors"), "--subjects", "1-2", "--epochs", "1",
                      "--out", str(out)]) == 0
    table = json.loads((out / "table.json").read_text())
    for mode in ("intra", "loso"):
        assert set(table[mode]["per_subject"]) == {"1", "2"} and table[mode]["k"] == TEST_CONCEPTS
        metrics = json.loads((out / mode / "sub-01" / "metrics.json").read_text())
        assert metrics["candidates"] == "image" and metrics["zero_shot"] and metrics["n"] == TEST_CONCEPTS
    split = json.loads((out / "loso" / "sub-02" / "split.json").read_text())
    run = json.loads((out / "loso" / "sub-02" / "run.json").read_text())
    assert run["embedding"]["space"] == "open_clip:test/none" and "sub-01" in run["data"] and len(split["test"]) == 10
    text = (out / "table.md").read_text()
    assert "| NICE (Song et al., ICLR 2024) | 15.6 | 42.8 |" in text and "UBP" in text and "| yours (eegnet" in text
    assert "yours" in capsys.readouterr().out
    empty = table_markdown(None)  # the README's version: anchors beside an empty "yours" row
    assert empty.count("\n| yours |") == 1 and len(ANCHORS) == 3
