"""The semantic phantom: image embeddings drive the evoked response through a fixed linear map, so classes
never seen in training are decodable, and the retrieval oracle is the zero-shot ceiling."""

from dataclasses import replace

import numpy as np
import pytest

from bci_stream.cli import build_parser
from bci_stream.sources.phantom import Phantom
from offline_training.datasets import load_trials


@pytest.fixture(scope="module")
def pair(tiny_phantom_config):
    return Phantom(tiny_phantom_config), Phantom(replace(tiny_phantom_config, semantic=True))


def test_semantic_parts_come_from_their_own_random_stream(pair):
    plain, semantic = pair
    # every draw of the class-coded phantom (montage, components, subjects, noise maps) is unchanged
    for name in ("spatial", "latencies", "widths", "freqs", "phases", "alpha_maps", "line_amp", "line_phase"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(semantic, name), err_msg=name)
    assert plain.subjects == semantic.subjects
    assert not plain.config.semantic and not hasattr(plain, "embeddings")
    with pytest.raises(ValueError, match="semantic=True"):
        _ = plain.embedding_space
    # same background noise in the same session: only the evoked part differs
    quiet = dict(snr=0.0)
    a = Phantom(replace(plain.config, **quiet)).trials(subjects=[1])
    b = Phantom(replace(semantic.config, **quiet)).trials(subjects=[1])
    np.testing.assert_array_equal(a.eeg, b.eeg)


def test_embeddings_are_unit_vectors_clustered_by_class_and_drive_the_loadings(pair):
    _, ph = pair
    c = ph.config
    assert ph.embeddings.shape == (c.n_classes, c.images_per_class, c.embed_dim) and ph.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ph.embeddings, axis=-1), 1, rtol=1e-5)
    assert ph.embedding_space == (f"phantom:seed={c.seed},dim={c.embed_dim},classes={c.n_classes},"
                                  f"images={c.images_per_class},spread={c.class_spread:g}")
    flat = ph.embeddings.reshape(-1, c.embed_dim)
    same = np.repeat(np.arange(c.n_classes), c.images_per_class)
    sim = flat @ flat.T
    within = sim[(same[:, None] == same[None]) & ~np.eye(len(flat), dtype=bool)].mean()
    between = sim[same[:, None] != same[None]].mean()
    assert within > 0.6 and abs(between) < 0.2  # images of a class cluster, classes spread
    # loadings are the fixed linear map of the embedding (signed), class loadings its class means
    np.testing.assert_allclose(ph.image_loadings, ph.embeddings @ ph.embedding_map.T, rtol=1e-6)
    np.testing.assert_allclose(ph.loadings, ph.image_loadings.mean(1), rtol=1e-6, atol=1e-9)
    assert (ph.image_loadings < 0).any()
    ids, emb = ph.embeddings_by_image_id()
    np.testing.assert_array_equal(ph.image_embedding(ids[13]), emb[13])
    # the evoked amplitude stays comparable to the class-coded phantom's (loading RMS 1/sqrt(3) in expectation)
    assert 0.3 < np.sqrt((ph.image_loadings**2).mean()) < 0.9


def test_retrieval_oracle_is_the_matched_filter_among_candidates(pair):
    _, ph = pair
    trials = ph.trials().crop(20, 460)
    full = ph.oracle_probabilities(trials)
    held_out = [1, 3, 4]  # candidates: three classes' mean embeddings
    rows = np.isin(trials.labels, held_out)
    sub = trials.subset(rows)
    retrieval = ph.retrieval_oracle(sub, ph.class_embeddings[held_out])
    assert retrieval.shape == (rows.sum(), 3)
    # with class-mean candidates it is the full posterior restricted to them and renormalised
    restricted = full[rows][:, held_out]
    np.testing.assert_allclose(retrieval, restricted / restricted.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    truth = np.searchsorted(held_out, sub.labels)
    assert (retrieval.argmax(1) == truth).mean() > 0.8


def test_data_spec_and_simulate_take_the_semantic_switch():
    trials = load_trials("phantom:subjects=1,classes=3,channels=8,images=4,semantic=1,embed_dim=16", progress=False)
    assert len(trials) == 12 and trials.image_ids[0].count("_") == 1
    with pytest.raises(ValueError, match="use 1 or 0"):
        load_trials("phantom:semantic=maybe", progress=False)
    args = build_parser().parse_args(["simulate", "--semantic", "--embed-dim", "32"])
    assert args.semantic and args.embed_dim == 32
    assert not build_parser().parse_args(["simulate"]).semantic
