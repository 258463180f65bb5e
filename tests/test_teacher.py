"""The open_clip teacher through its real loading path, with a tiny random CLIP built from a config."""

import json

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from offline_training.training.teacher import (
    ClipTeacher,
    TeacherConfig,
    compute_soft_labels,
    find_image,
    load_soft_labels,
)

TINY = {"embed_dim": 64, "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random 2+2-layer CLIP: config JSON + safetensors checkpoint, as a lab's local model would be."""
    folder = tmp_path_factory.mktemp("clip")
    config = folder / "bci-test-tiny-clip.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(str(config))
    torch.manual_seed(0)
    model = open_clip.create_model("bci-test-tiny-clip", pretrained=None)
    checkpoint = folder / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(checkpoint))
    return TeacherConfig(model="bci-test-tiny-clip", pretrained=str(checkpoint), model_config=str(config), batch_size=4)


@pytest.fixture
def stimulus_images(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"n02389026_{i}" for i in range(3)] + [f"n03888257_{i}" for i in range(3)]
    (tmp_path / "n03888257").mkdir()
    for image_id in ids:
        folder = tmp_path / "n03888257" if image_id.startswith("n0388") else tmp_path  # both layouts
        Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(folder / f"{image_id}.JPEG")
    return tmp_path, ids


def test_teacher_loads_checkpoint_and_gives_probabilities(tiny_clip, stimulus_images):
    folder, ids = stimulus_images
    teacher = ClipTeacher(tiny_clip, ["sorrel", "parachute", "iron"])
    # the checkpoint really was loaded: the weights equal the saved ones
    from safetensors.torch import load_file

    saved = load_file(tiny_clip.pretrained)
    key = next(k for k in saved if k.endswith("proj") or "proj" in k)
    torch.testing.assert_close(teacher.model.state_dict()[key].cpu(), saved[key])
    assert teacher.text_features.shape == (3, 64)
    probs = teacher.probabilities([Image.open(find_image(folder, i)) for i in ids])
    assert probs.shape == (6, 3)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)


def test_soft_labels_are_cached_by_image_id(tiny_clip, stimulus_images, tmp_path, monkeypatch):
    folder, ids = stimulus_images
    cache = tmp_path / "soft.safetensors"
    trial_ids = np.array(ids + ids[:2])  # images repeat across trials and subjects
    compute_soft_labels(trial_ids.tolist(), folder, ["sorrel", "parachute"], tiny_clip, cache, progress=False)
    labels = load_soft_labels(cache)
    assert labels.image_ids == sorted(ids) and labels.teacher == tiny_clip.name
    per_trial = labels.for_trials(trial_ids)
    assert per_trial.shape == (8, 2)
    np.testing.assert_array_equal(per_trial[6], per_trial[0])

    # a second call must not run the teacher again
    def boom(*args, **kwargs):
        raise AssertionError("teacher recomputed cached images")

    monkeypatch.setattr("offline_training.training.teacher.ClipTeacher", boom)
    compute_soft_labels(trial_ids.tolist(), folder, ["sorrel", "parachute"], tiny_clip, cache, progress=False)
    with pytest.raises(KeyError, match="lacks 1 images"):
        labels.for_trials(np.array(["n00000000_1"]))


def test_missing_images_and_weights_fail_clearly(tiny_clip, tmp_path):
    with pytest.raises(FileNotFoundError, match="1 stimulus images not found"):
        compute_soft_labels(["n01_1"], tmp_path, ["a"], tiny_clip, tmp_path / "c.safetensors", progress=False)
    offline = TeacherConfig(model="ViT-B-32", pretrained="laion2b_s34b_b79k")
    with pytest.raises(RuntimeError, match="Offline, pass a local checkpoint path"):
        ClipTeacher(offline, ["a", "b"])
