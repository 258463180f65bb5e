"""Live decisions of an embedding model: retrieval from a gallery index, scored against the stimulus,
on the JSONL log and on LSL (the predictions outlet's documented layout and the ``-topk`` companion)."""

import json
import threading

import numpy as np
import pylsl
import pytest
from conftest import unique_name
from scipy.special import softmax

from bci_stream.cli import main as bci_stream
from bci_stream.live.decoder import Decoder
from bci_stream.live.session import LiveConfig, LiveSession, LiveSpec, build_session, open_retriever
from bci_stream.lsl.outlets import retrieval_channel_labels
from bci_stream.retrieval.index import GalleryError, GalleryIndex, load_gallery, save_gallery
from bci_stream.retrieval.retriever import Retriever
from bci_stream.sources.simulate import OutletConfig, phantom_pusher
from bci_stream.testing import CollectingSink, ScriptedMarkers, ScriptedSource


@pytest.fixture(scope="module")
def gallery(phantom_gallery_file):
    return load_gallery(phantom_gallery_file)


@pytest.fixture(scope="module")
def decoder(tiny_embedding_model):
    return Decoder(tiny_embedding_model, providers="cpu")


def test_a_retrieval_decision_is_the_nearest_images_and_their_classes(gallery):
    retriever = Retriever(gallery, k=4, logit_scale=20.0)
    query = gallery.embeddings[13] + 0.3 * gallery.embeddings[40]
    probabilities, top5, r = retriever.decide(query * 3.0)  # any length: the embedding is normalised first
    unit = query / np.linalg.norm(query)
    sims = gallery.embeddings @ unit
    np.testing.assert_array_equal(r.rows, np.argsort(-sims)[:4])
    np.testing.assert_allclose(r.similarities, np.sort(sims)[::-1][:4], rtol=1e-5)
    np.testing.assert_allclose(r.scores, softmax(20.0 * sims)[r.rows], rtol=1e-4)  # over the whole gallery
    assert r.ids == [gallery.ids[i] for i in r.rows] and r.labels == [gallery.labels[i] for i in r.rows]
    assert probabilities.shape == (retriever.n_classes,) and abs(probabilities.sum() - 1) < 1e-5
    per_class = np.bincount(retriever.row_class, weights=softmax(20.0 * sims), minlength=retriever.n_classes)
    np.testing.assert_allclose(probabilities, per_class, atol=1e-6)
    assert retriever.class_names[top5[0]] == r.labels[0] and len(set(top5)) == len(top5) == 5


def event_session(decoder, gallery, tmp_path=None, **config):
    source, outlet, markers = ScriptedSource(decoder.card.n_channels), CollectingSink(), ScriptedMarkers()
    retriever = Retriever(gallery, k=3, logit_scale=decoder.card.embedding_spec().logit_scale)
    session = LiveSession(decoder, LiveConfig(mode="event", log_path=tmp_path / "r.jsonl" if tmp_path else None,
                                              **config), source=source, outlet=outlet, markers=markers,
                          retriever=retriever)
    return session, source, outlet, markers


def test_event_decisions_are_scored_by_the_top_image_s_label(decoder, gallery, tmp_path):
    session, source, outlet, markers = event_session(decoder, gallery, tmp_path)
    source.feed(100)
    session.step()
    row = 17
    markers.queue = [(source.t0 + 0.05, gallery.ids[row]), (source.t0 + 0.07, "response")]
    source.feed(700)
    session.step()
    session.close()
    scored, unscored = outlet.decisions
    truth = session.retriever.row_class[row]
    assert scored.truth == truth and unscored.truth is None
    assert scored.hit == (scored.retrieval.labels[0] == gallery.labels[row])
    assert session.state.event_accuracy["chance_top1"] == pytest.approx(1 / session.retriever.n_classes)
    record = next(r for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines()) if r.get("marker") == gallery.ids[row])
    assert record["topk_ids"] == scored.retrieval.ids and len(record["topk_similarities"]) == 3
    assert record["truth_name"] == gallery.labels[row] and record["hit"] == scored.hit
    assert "probabilities" not in record and len(record["top5_probabilities"]) == 5
    assert session.state.retrieval["ids"] == outlet.decisions[-1].retrieval.ids  # what the viewer shows


def test_a_non_finite_embedding_is_withheld_not_retrieved(decoder, gallery, monkeypatch):
    session, source, outlet, markers = event_session(decoder, gallery)
    monkeypatch.setattr(decoder, "classify", lambda window, end=None: np.full(decoder.card.n_outputs, np.nan, np.float32))
    source.feed(100)
    session.step()
    markers.queue = [(source.t0 + 0.05, gallery.ids[0])]
    source.feed(700)
    session.step()
    assert outlet.decisions == [] and session.state.n_withheld == 1
    assert "non-finite" in session.state.withheld_reason


def test_an_embedding_model_needs_a_gallery_in_its_own_space(decoder, gallery, tiny_model, tmp_path):
    with pytest.raises(GalleryError, match="embedding model.*--gallery-index"):
        LiveSession(decoder, LiveConfig(), source=ScriptedSource(decoder.card.n_channels))
    other = GalleryIndex(embeddings=gallery.embeddings, ids=gallery.ids, labels=gallery.labels,
                         space="open_clip:ViT-B-32/openai")
    path = save_gallery(other, tmp_path / "other.safetensors")
    with pytest.raises(GalleryError) as err:
        open_retriever(path, decoder.card, LiveConfig())
    assert "open_clip:ViT-B-32/openai" in str(err.value) and decoder.card.embedding_spec().space in str(err.value)
    with pytest.raises(GalleryError, match="for embedding models"):
        build_session(LiveSpec(model=str(tiny_model), providers="cpu", gallery_index=str(path)))


def test_the_cli_refuses_a_missing_or_foreign_gallery_in_one_line(tiny_embedding_model, tmp_path, capsys):
    base = ["live", "--model", str(tiny_embedding_model), "--headless", "--seconds", "1", "--resolve-timeout", "0.2"]
    assert bci_stream(base) == 2
    err = capsys.readouterr().err
    assert "--gallery-index" in err and err.count("\n") == 1
    (tmp_path / "junk.safetensors").write_bytes(b"junk" * 10)
    assert bci_stream(base + ["--gallery-index", str(tmp_path / "junk.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "not a readable safetensors file" in err and err.count("\n") == 1


def channel_labels(info) -> list[str]:
    child, labels = info.desc().child("channels").first_child(), []
    while not child.empty():
        labels.append(child.child_value("label"))
        child = child.next_sibling()
    return labels


def test_retrieval_decisions_reach_the_lsl_outlets_with_the_documented_layout(
        tiny_embedding_model, phantom_gallery_file, gallery, tiny_phantom_config, tmp_path):
    name, out_name = unique_name("eeg"), unique_name("pred")
    pusher = phantom_pusher(tiny_phantom_config, OutletConfig(name=name, source_id=name), isi=0.3).start()
    config = LiveConfig(stream=name, markers=f"{name}-markers", mode="event", outlet_name=out_name, top_k=3,
                        publish_embedding=True, log_path=tmp_path / "s.jsonl")
    session = build_session(LiveSpec(model=str(tiny_embedding_model), providers="cpu", live=config,
                                     gallery_index=str(phantom_gallery_file)))
    try:
        session.start()
        inlets = {}
        for stream in (out_name, f"{out_name}-topk"):
            inlet = pylsl.StreamInlet(pylsl.resolve_byprop("name", stream, timeout=5)[0])
            inlet.open_stream(timeout=5)
            inlets[stream] = (inlet, inlet.info(timeout=5))
        runner = threading.Thread(target=session.run, kwargs={"seconds": 3.0})
        runner.start()
        samples, texts, stamps = [], [], []
        while runner.is_alive():
            chunk, ts = inlets[out_name][0].pull_chunk(timeout=0.1, max_samples=100)
            samples += chunk
            stamps += ts
            texts += [s[0] for s in inlets[f"{out_name}-topk"][0].pull_chunk(timeout=0.0, max_samples=100)[0]]
        runner.join()
        texts += [s[0] for s in inlets[f"{out_name}-topk"][0].pull_chunk(timeout=0.5, max_samples=100)[0]]
    finally:
        pusher.close()
    info = inlets[out_name][1]
    dim = gallery.dim
    assert channel_labels(info) == retrieval_channel_labels(3, dim)
    assert channel_labels(info)[:3] == ["top1_row", "top2_row", "top3_row"] and channel_labels(info)[-1] == f"emb_{dim - 1}"
    desc = info.desc().child("retrieval")
    assert desc.child_value("space") == gallery.space and int(desc.child_value("gallery_size")) == gallery.size
    assert json.loads(desc.child_value("ids")) == gallery.ids and len(desc.child_value("gallery_sha256")) == 64
    assert inlets[f"{out_name}-topk"][1].channel_format() == pylsl.cf_string
    records = [r for r in map(json.loads, (tmp_path / "s.jsonl").read_text().splitlines()) if "topk_ids" in r]
    assert len(records) >= 5 and len(samples) >= len(records) - 2 and len(texts) >= len(records) - 2
    by_end = {r["window_end_sample"]: r for r in records}
    for sample, text in zip(samples, texts):
        rows, sims = np.asarray(sample[:3]), np.asarray(sample[3:6])
        record = by_end[int(sample[9])]
        assert rows.tolist() == record["topk_rows"] and np.all(np.diff(sims) <= 1e-7)
        assert json.loads(text)["ids"] == [gallery.ids[int(r)] for r in rows] == record["topk_ids"]
        np.testing.assert_allclose(np.linalg.norm(sample[12:]), 1.0, rtol=1e-5)  # the embedding
        np.testing.assert_allclose(sample[12:], record["embedding"], atol=1e-5)
    assert all(r["marker"] in gallery.ids and r["truth_name"] == gallery.labels[gallery.ids.index(r["marker"])]
               for r in records)  # every phantom marker is scored through the gallery
