"""The gallery index: one safetensors file, round trip, retrieval, and every way a file can be wrong."""

import json
import pickle

import numpy as np
import pytest
from safetensors.numpy import save_file

from bci_stream.contract.model_card import ModelCard
from bci_stream.retrieval.index import (
    GalleryError,
    GalleryIndex,
    check_gallery_fits_card,
    load_gallery,
    phantom_gallery,
    save_gallery,
)


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def small_gallery(n: int = 12, dim: int = 8, thumbnails: bool = True) -> GalleryIndex:
    thumbs = np.random.default_rng(1).integers(0, 255, (n, 6, 6, 3), dtype=np.uint8) if thumbnails else None
    return GalleryIndex(embeddings=unit_rows(n, dim), ids=[f"n0{k // 4}_{k % 4}" for k in range(n)],
                        labels=[f"class {k // 4}" for k in range(n)], space="open_clip:tiny/tiny.safetensors",
                        checkpoint_sha256="ab" * 32, thumbnails=thumbs)


def test_a_gallery_round_trips_through_one_safetensors_file(tmp_path):
    gallery = small_gallery()
    path = save_gallery(gallery, tmp_path / "idx.safetensors")
    assert list(tmp_path.iterdir()) == [path]
    back = load_gallery(path)
    np.testing.assert_array_equal(back.embeddings, gallery.embeddings)
    np.testing.assert_array_equal(back.thumbnails, gallery.thumbnails)
    assert (back.ids, back.labels, back.space, back.checkpoint_sha256) == \
           (gallery.ids, gallery.labels, gallery.space, gallery.checkpoint_sha256)
    assert not back.thumbnails.flags.writeable  # mapped from the file, read-only
    without = load_gallery(path, thumbnails=False)
    assert without.thumbnails is None and without.ids == gallery.ids
    no_thumbs = save_gallery(small_gallery(thumbnails=False), tmp_path / "bare.safetensors")
    assert load_gallery(no_thumbs).thumbnails is None


def test_search_returns_the_nearest_rows_by_cosine_most_similar_first():
    gallery = small_gallery(n=50, dim=16)
    query = gallery.embeddings[7] + 0.1 * unit_rows(1, 16, seed=5)[0]
    query /= np.linalg.norm(query)
    rows, sims = gallery.search(query, k=5)
    full = gallery.embeddings @ query
    np.testing.assert_array_equal(rows, np.argsort(-full)[:5])
    np.testing.assert_allclose(sims, np.sort(full)[::-1][:5], rtol=1e-6)
    assert rows[0] == 7 and len(gallery.search(query, k=500)[0]) == 50


def test_the_gallery_s_classes_come_from_its_labels_with_synset_ids():
    ids, names, row_class = small_gallery().classes()
    assert names == ["class 0", "class 1", "class 2"] and ids == ["n00", "n01", "n02"]
    assert row_class.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def write_raw(path, header: dict, data: bytes = b"") -> None:
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)


@pytest.mark.parametrize("case", ["missing", "empty", "random bytes", "pickle", "truncated", "huge header",
                                  "foreign safetensors", "newer version", "no version", "ids not json",
                                  "ids count", "duplicate ids", "not unit rows", "nan rows", "no embeddings",
                                  "bad thumbnails"])
def test_a_corrupt_or_foreign_index_is_refused_in_one_line(tmp_path, case):
    path = tmp_path / "idx.safetensors"
    good = small_gallery()
    meta = {"format": "bci-stream-gallery", "version": "1", "space": good.space, "checkpoint_sha256": "",
            "ids": json.dumps(good.ids), "labels": json.dumps(good.labels)}
    tensors = {"embeddings": good.embeddings}
    if case == "empty":
        path.write_bytes(b"")
    elif case == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(500))
    elif case == "pickle":  # never unpickled: it is simply not a safetensors file
        path.write_bytes(pickle.dumps({"embeddings": good.embeddings}))
    elif case == "truncated":
        save_gallery(good, path)
        path.write_bytes(path.read_bytes()[:-100])
    elif case == "huge header":
        path.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    elif case == "foreign safetensors":  # e.g. a teacher cache
        save_file({"probabilities": good.embeddings}, str(path), metadata={"image_ids": "[]"})
    elif case != "missing":
        if case == "newer version":
            meta["version"] = "99"
        elif case == "no version":
            del meta["version"]
        elif case == "ids not json":
            meta["ids"] = "[not json"
        elif case == "ids count":
            meta["ids"] = json.dumps(good.ids[:-1])
        elif case == "duplicate ids":
            meta["ids"] = json.dumps([good.ids[0]] * len(good.ids))
        elif case == "not unit rows":
            tensors["embeddings"] = good.embeddings * 2
        elif case == "nan rows":
            tensors["embeddings"] = np.where(np.arange(12)[:, None] == 3, np.nan, good.embeddings).astype(np.float32)
        elif case == "no embeddings":
            tensors = {"other": good.embeddings}
        elif case == "bad thumbnails":
            tensors["thumbnails"] = np.zeros((3, 4, 4, 3), np.uint8)
        save_file(tensors, str(path), metadata=meta)
    with pytest.raises(GalleryError) as err:
        load_gallery(path)
    message = str(err.value)
    assert "\n" not in message and str(path.name) in message
    expected = {"missing": "bci-stream index", "newer version": "upgrade bci-stream", "foreign safetensors": "not a "
                "bci-stream gallery", "duplicate ids": "unique", "not unit rows": "unit length", "nan rows": "not finite",
                "ids count": "11 ids for 12"}.get(case, "rebuild it with `bci-stream index`")
    assert expected in message, message


def test_a_header_whose_offsets_lie_is_refused(tmp_path):
    path = tmp_path / "idx.safetensors"
    header = {"__metadata__": {"format": "bci-stream-gallery", "version": "1", "space": "x", "ids": "[\"a\"]",
                               "labels": "[\"\"]"},
              "embeddings": {"dtype": "F32", "shape": [1, 4], "data_offsets": [0, 4000]}}
    write_raw(path, header, b"\0" * 16)
    with pytest.raises(GalleryError, match="rebuild it"):
        load_gallery(path)


def embedding_card(space: str, dim: int, sha: str = "") -> ModelCard:
    return ModelCard(sfreq=1000.0, ch_names=["O1", "O2"], class_ids=[], class_names=[], window_length=0.1,
                     output_kind="embedding", embedding={"dim": dim, "space": space, "checkpoint_sha256": sha,
                                                         "normalisation": "l2", "logit_scale": 10.0})


def test_a_gallery_in_another_space_or_dimension_is_refused_naming_both():
    gallery = small_gallery()
    check_gallery_fits_card(gallery, embedding_card(gallery.space, gallery.dim))
    with pytest.raises(GalleryError) as err:
        check_gallery_fits_card(gallery, embedding_card("phantom:seed=0,dim=64", 64))
    assert gallery.space in str(err.value) and "phantom:seed=0,dim=64" in str(err.value) and "(8-d)" in str(err.value)
    with pytest.raises(GalleryError, match="other weights"):
        check_gallery_fits_card(gallery, embedding_card(gallery.space, gallery.dim, sha="cd" * 32))
    classifier = ModelCard(sfreq=1000.0, ch_names=["O1"], class_ids=["a", "b"], class_names=["a", "b"], window_length=0.1)
    with pytest.raises(GalleryError, match="for embedding models"):
        check_gallery_fits_card(gallery, classifier)


def test_the_phantom_gallery_has_one_row_per_phantom_image_with_its_marker_id(semantic_phantom):
    gallery = phantom_gallery(semantic_phantom, thumb=32)
    c = semantic_phantom.config
    assert gallery.size == c.n_classes * c.images_per_class and gallery.space == semantic_phantom.embedding_space
    assert gallery.ids[c.images_per_class + 2] == f"{semantic_phantom.class_ids[1]}_2"
    assert gallery.labels[c.images_per_class + 2] == semantic_phantom.class_names[1]
    np.testing.assert_allclose(gallery.embeddings[c.images_per_class + 2], semantic_phantom.embeddings[1, 2], atol=1e-6)
    assert gallery.thumbnails.shape == (gallery.size, 32, 32, 3)
    assert not np.array_equal(gallery.thumbnails[0], gallery.thumbnails[1])  # the image number is drawn on it


def test_index_command_writes_the_semantic_phantom_s_gallery(tmp_path, capsys):
    from bci_stream.cli import main as bci_stream
    from bci_stream.sources.phantom import Phantom, PhantomConfig

    out = tmp_path / "phantom.safetensors"
    assert bci_stream(["index", "--phantom", "--seed", "2", "--embed-dim", "8", "--classes", "3", "--images", "4",
                       "--out", str(out)]) == 0
    gallery = load_gallery(out)
    phantom = Phantom(PhantomConfig(seed=2, n_classes=3, images_per_class=4, semantic=True, embed_dim=8))
    assert gallery.space.startswith("phantom:seed=2,dim=8,") and gallery.space == phantom.embedding_space and gallery.size == 12
    np.testing.assert_allclose(gallery.embeddings[5], phantom.image_embedding(gallery.ids[5]), atol=1e-6)
    assert "12 images (3 classes)" in capsys.readouterr().out
    assert bci_stream(["index", "--phantom", "somedir", "--out", str(out)]) == 2
    assert "drop DIR" in capsys.readouterr().err
