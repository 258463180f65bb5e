"""The open_clip image embedder and `bci-stream index`, with a tiny random CLIP built from a config in
the test, saved as safetensors and loaded back through the real path (no network)."""

import json
import pickle

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from bci_stream.cli import main as bci_stream
from bci_stream.retrieval.image_embedder import ImageEmbedder, ImageModelError, embed_image_files, file_sha256
from bci_stream.retrieval.index import load_gallery

TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
NAME = "bci-test-embedder-clip"


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """(config JSON, safetensors weights) of a random 1+1-layer CLIP, as a lab's local model would be."""
    folder = tmp_path_factory.mktemp("clip")
    config = folder / f"{NAME}.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(str(config))
    torch.manual_seed(0)
    model = open_clip.create_model(NAME, pretrained=None)
    weights = folder / "tiny-clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return config, weights


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Concept folders with a few images each (THINGS-like ``<concept>/<image>.jpg``)."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for concept, tint in (("aardvark", (200, 60, 60)), ("zebra", (60, 60, 200))):
        (root / concept).mkdir()
        for k in range(3):
            pixels = np.clip(rng.normal(tint, 40, (48, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / concept / f"{concept}_{k:02d}s.jpg")
    return root


def test_image_files_are_embedded_as_unit_rows_in_a_named_space(tiny_clip, image_folder):
    config, weights = tiny_clip
    files = sorted(image_folder.rglob("*.jpg"))
    embeddings, space, sha = embed_image_files(files, NAME, str(weights), batch=4, device="cpu", model_config=str(config))
    assert embeddings.shape == (6, 32) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    assert space == f"open_clip:{NAME}/tiny-clip.safetensors" and sha == file_sha256(weights)
    embedder = ImageEmbedder(NAME, str(weights), device="cpu")
    with Image.open(files[4]) as im:
        np.testing.assert_allclose(embedder.embed([im])[0], embeddings[4], atol=1e-5)  # batching changes nothing


def test_pickled_weights_load_as_tensors_only_and_a_pickle_that_runs_code_is_refused(tiny_clip, tmp_path):
    config, weights = tiny_clip
    from safetensors.torch import load_file

    plain = tmp_path / "tiny.pt"
    torch.save(load_file(str(weights)), plain)
    assert ImageEmbedder(NAME, str(plain), device="cpu").space == f"open_clip:{NAME}/tiny.pt"

    class RunsCode:
        def __reduce__(self):
            return (print, ("this must never run",))

    hostile = tmp_path / "hostile.bin"
    hostile.write_bytes(pickle.dumps({"state_dict": RunsCode()}))
    with pytest.raises(ImageModelError, match="asks to run code.*safetensors"):
        ImageEmbedder(NAME, str(hostile), device="cpu")


def test_missing_weights_unknown_models_and_uncached_tags_fail_in_one_line(tiny_clip, tmp_path):
    with pytest.raises(ImageModelError, match="no weights file"):
        ImageEmbedder(NAME, str(tmp_path / "absent.safetensors"), device="cpu")
    with pytest.raises(ImageModelError, match="unknown open_clip model 'no-such-model'"):
        ImageEmbedder("no-such-model", "openai", device="cpu")
    with pytest.raises(ImageModelError, match="local Hugging Face cache"):  # offline: the tag is not cached
        ImageEmbedder("ViT-B-32", "laion2b_s34b_b79k", device="cpu")


def test_index_command_builds_a_gallery_with_labels_from_folders_and_thumbnails(tiny_clip, image_folder, tmp_path,
                                                                               capsys):
    config, weights = tiny_clip
    out = tmp_path / "idx.safetensors"
    assert bci_stream(["index", str(image_folder), "--model", NAME, "--pretrained", str(weights),
                       "--model-config", str(config), "--out", str(out), "--thumb", "24", "--device", "cpu"]) == 0
    gallery = load_gallery(out)
    assert gallery.size == 6 and gallery.dim == 32 and gallery.thumbnails.shape == (6, 24, 24, 3)
    assert gallery.labels == ["aardvark"] * 3 + ["zebra"] * 3 and gallery.ids[0] == "aardvark_00s"
    assert gallery.space == f"open_clip:{NAME}/tiny-clip.safetensors" and gallery.checkpoint_sha256 == file_sha256(weights)
    assert gallery.thumbnails[0].mean(axis=(0, 1))[0] > gallery.thumbnails[0].mean(axis=(0, 1))[2]  # the red ones
    assert "6 images (2 classes)" in capsys.readouterr().out


def test_index_command_refuses_an_empty_folder_and_an_unreadable_image(tiny_clip, tmp_path, capsys):
    config, weights = tiny_clip
    args = ["--model", NAME, "--pretrained", str(weights), "--model-config", str(config), "--out", str(tmp_path / "x")]
    (tmp_path / "empty").mkdir()
    assert bci_stream(["index", str(tmp_path / "empty"), *args]) == 2
    assert "no images" in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.jpg").write_bytes(b"not a jpeg")
    assert bci_stream(["index", str(tmp_path / "bad"), *args]) == 2
    err = capsys.readouterr().err
    assert "broken.jpg is not a readable image" in err and err.count("\n") == 1
