"""The embedding-conditioned renderer: a tiny random unCLIP pipeline through the real loader, in
process, in the child process and behind the worker (latest-wins, the space rule, fallback to the
top-1 retrieved image)."""

import json
import os
import threading
import time

import numpy as np
import pytest
from dummy_pipelines import build_tiny_unclip_pipeline
from waiting import submit_while_busy

from bci_stream.contract.model_card import ModelCard
from bci_stream.live.state import SharedState
from bci_stream.render import RenderConfig, RendererError, RenderWorker
from bci_stream.render.base import RendererBase
from bci_stream.render.embedding_diffusion import (
    EmbeddingDiffusionRenderer,
    check_space,
    pipeline_space,
    typical_norm,
)
from bci_stream.render.process import ProcessRenderer
from bci_stream.render.retrieval import RetrievalRenderer
from bci_stream.retrieval.index import GalleryIndex

DIM = 32
SPACE = f"phantom:seed=0,dim={DIM}"


@pytest.fixture(scope="module")
def tiny_unclip(tmp_path_factory):
    return build_tiny_unclip_pipeline(tmp_path_factory.mktemp("tiny-unclip"), embed_dim=DIM)


def unclip_config(folder, **kw) -> RenderConfig:
    base = dict(kind="embedding-diffusion", diffusion_model=str(folder), embedding_space=SPACE, size=32,
                embedding_steps=2, device="cpu")
    base.update(kw)
    return RenderConfig(**base)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def three_colour_index(side: int = 16, thumbnails: bool = True) -> GalleryIndex:
    """Three gallery rows with red, green and blue thumbnails (the second without a label)."""
    pictures = np.zeros((3, side, side, 3), np.uint8)
    for row in range(3):
        pictures[row, ..., row] = 255
    return GalleryIndex(embeddings=np.eye(3, DIM, dtype=np.float32), ids=["n02389026_1", "n03888257_4", "n03584829_2"],
                        labels=["sorrel", "", "iron"], space=SPACE, thumbnails=pictures if thumbnails else None)


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.05)


def test_unclip_renderer_draws_the_scaled_embedding_seeded_per_row(tiny_unclip):
    import torch

    config = unclip_config(tiny_unclip)
    renderer = EmbeddingDiffusionRenderer(config, decoder_space=SPACE)
    assert renderer.dim == DIM and renderer.space == SPACE
    # random normaliser statistics (mean 0, std 1): the pipeline's embeddings have norm sqrt(DIM)
    assert renderer.norm == pytest.approx(np.sqrt(DIM)) == typical_norm(renderer.pipe)
    a = renderer.render_embedding(unit(0), row=3)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    scaled = renderer.render_embedding(5 * unit(0), row=3)  # only the direction counts (up to float rounding)
    assert np.abs(a.astype(int) - scaled).max() <= 1
    assert not np.array_equal(a, renderer.render_embedding(unit(1), row=3))
    assert not np.array_equal(a, renderer.render_embedding(unit(0), row=4))  # another retrieved image's seed
    # exactly what the pipeline draws from the unit vector scaled to its norm, with an empty prompt
    direct = renderer.pipe(image_embeds=torch.from_numpy(unit(0) * renderer.norm)[None], prompt="",
                           num_inference_steps=2, guidance_scale=config.embedding_guidance, height=32, width=32,
                           generator=torch.Generator().manual_seed(config.seed + 3)).images[0]
    np.testing.assert_array_equal(a, np.asarray(direct.convert("RGB")))
    with pytest.raises(RendererError, match=f"{DIM}-d embedding, got 7-d"):
        renderer.render_embedding(np.ones(7, np.float32), row=0)
    with pytest.raises(RendererError, match="non-finite"):
        renderer.render_embedding(np.full(DIM, np.nan, np.float32), row=0)


def test_pipeline_space_is_given_known_or_read_from_the_image_encoder(tiny_unclip, tmp_path):
    assert pipeline_space("stabilityai/stable-diffusion-2-1-unclip") == "open_clip:ViT-H-14/laion2b_s32b_b79k"
    assert pipeline_space("stabilityai/stable-diffusion-2-1-unclip-small") == "open_clip:ViT-L-14/openai"
    assert pipeline_space(str(tiny_unclip), "open_clip:x/y") == "open_clip:x/y"
    with pytest.raises(RendererError, match="--embedding-space"):
        pipeline_space(str(tiny_unclip))  # a 32-wide random encoder is no known image model
    with pytest.raises(RendererError, match="--embedding-space"):
        pipeline_space("someone/unknown-unclip")  # a hub id not in the local cache
    # a saved SD 2.1 unCLIP folder: its image encoder is OpenCLIP ViT-H/14 by architecture
    (tmp_path / "image_encoder").mkdir()
    (tmp_path / "image_encoder" / "config.json").write_text(json.dumps(
        {"hidden_size": 1280, "num_hidden_layers": 32, "patch_size": 14, "projection_dim": 1024}))
    assert pipeline_space(str(tmp_path)) == "open_clip:ViT-H-14/laion2b_s32b_b79k"


def test_a_model_in_another_space_is_refused_in_one_line_naming_both(tiny_unclip):
    other = "open_clip:ViT-B-32/laion2b_s34b_b79k"
    with pytest.raises(RendererError) as err:
        EmbeddingDiffusionRenderer(unclip_config(tiny_unclip), decoder_space=other)
    message = str(err.value)
    assert other in message and SPACE in message and "\n" not in message
    check_space(SPACE, SPACE, "x")  # the same space passes


def test_retrieval_shows_the_rows_thumbnail_or_a_card_naming_it():
    index = three_colour_index()
    retrieval = RetrievalRenderer.from_gallery(index, size=24)
    green = retrieval.render_embedding(unit(0), 1)
    assert green.shape == (24, 24, 3) and green[..., 1].min() == 255 and green[..., 0].max() == 0
    assert retrieval.name_of(0) == "sorrel" and retrieval.name_of(1) == "n03888257_4"  # no label: the image id
    no_pictures = RetrievalRenderer.from_gallery(three_colour_index(thumbnails=False), size=24)
    drawn = no_pictures.render_embedding(unit(0), 2)
    assert drawn.shape == (24, 24, 3) and len(np.unique(drawn.reshape(-1, 3), axis=0)) > 1  # "iron" on a card


class SlowEmbeddingRenderer(RendererBase):
    kind = "embedding-diffusion"
    draws_embeddings = True

    def __init__(self):
        self.rows, self.embeddings = [], []
        self.started = threading.Event()  # the first render began
        self.release = threading.Event()

    def render_embedding(self, embedding, row):
        self.started.set()
        self.release.wait()
        self.rows.append(row)
        self.embeddings.append(embedding)
        return np.zeros((8, 8, 3), np.uint8)


def test_worker_renders_only_the_newest_embedding_decision_and_never_blocks():
    slow = SlowEmbeddingRenderer()
    state = SharedState()
    worker = RenderWorker(RenderConfig(kind="embedding-diffusion"), [], state, [], renderer=slow,
                          retrieval=RetrievalRenderer.from_gallery(three_colour_index()), decoder_space=SPACE).start()
    try:
        buffer = unit(0)
        assert worker.submit_embedding(buffer, 0, similarity=0.8, t_lsl=12.5)
        assert slow.started.wait(timeout=30)  # the worker is now stuck rendering row 0

        def offer(row):
            buffer[:] = unit(row)  # the decoder reuses its output buffer: the worker must have copied it
            return worker.submit_embedding(buffer, row, similarity=0.8)

        accepted = submit_while_busy(offer, (1, 2, 1, 1))
        assert not slow.release.is_set() and slow.rows == []  # they returned while the renderer was held
        assert accepted == [True, True, True, False]  # the last: same top-1 again, nothing to do
        slow.release.set()
        wait_for(lambda: worker.n_rendered >= 2 and state.image is not None and state.image.class_index == 1, 30)
        assert slow.rows == [0, 1] and worker.n_dropped == 2  # 4 accepted = 2 rendered + 2 dropped: none left
        np.testing.assert_array_equal(slow.embeddings[0], unit(0))
        np.testing.assert_array_equal(slow.embeddings[1], unit(1))
        image = state.image
        assert image.class_index == 1 and image.class_name == "n03888257_4" and image.kind == "embedding-diffusion"
    finally:
        slow.release.set()
        worker.stop()


def test_worker_skips_embedding_decisions_below_min_similarity():
    worker = RenderWorker(RenderConfig(kind="gallery", min_similarity=0.3), [], SharedState(), [])
    assert not worker.submit_embedding(unit(0), 0, similarity=0.2)
    assert worker.submit_embedding(unit(0), 0, similarity=0.4)


def test_gallery_kind_shows_an_embedding_decisions_top1_thumbnail():
    state = SharedState()
    worker = RenderWorker(RenderConfig(kind="gallery", size=16), [], state, [],
                          retrieval=RetrievalRenderer.from_gallery(three_colour_index(), size=16),
                          decoder_space=SPACE).start()
    try:
        worker.submit_embedding(unit(0), 2)
        wait_for(lambda: state.image is not None, 5)
        assert state.image.kind == "retrieval" and state.image.class_name == "iron"
        assert state.image.image[..., 2].min() == 255  # row 2 is blue
    finally:
        worker.stop()


def test_worker_falls_back_to_retrieval_when_the_spaces_differ(tiny_unclip):
    state = SharedState()
    worker = RenderWorker(unclip_config(tiny_unclip), [], state, [],
                          retrieval=RetrievalRenderer.from_gallery(three_colour_index(), size=32),
                          decoder_space="open_clip:ViT-B-32/laion2b_s34b_b79k").start()
    try:
        worker.submit_embedding(unit(0), 0)
        wait_for(lambda: state.image is not None, 10)  # refused before any child process starts
        assert state.renderer_kind == "retrieval (fallback)"
        assert "ViT-B-32" in state.renderer_error and SPACE in state.renderer_error
        assert state.image.kind == "retrieval" and state.image.image[..., 0].min() == 255  # row 0's red thumbnail
    finally:
        worker.stop()


def test_embedding_diffusion_refuses_a_classifier_and_the_gallery_takes_over(tiny_unclip):
    state = SharedState()
    worker = RenderWorker(unclip_config(tiny_unclip, size=16), ["sorrel", "iron"], state, ["n02389026", "n03584829"],
                          decoder_space=None).start()
    try:
        wait_for(lambda: state.renderer_error != "", 10)
        assert "class probabilities" in state.renderer_error and "--renderer diffusion" in state.renderer_error
        worker.submit(prediction(1))
        wait_for(lambda: state.image is not None, 5)
        assert state.image.kind == "gallery" and state.image.class_name == "iron"
    finally:
        worker.stop()


def prediction(index: int, n: int = 2):
    from bci_stream.live.prediction import Prediction

    probs = np.full(n, 0.1 / (n - 1))
    probs[index] = 0.9
    return Prediction(0.0, 0.0, probs, [int(i) for i in np.argsort(-probs)], 0, 0.0)


def test_renderer_process_draws_what_the_in_process_renderer_draws(tiny_unclip):
    config = unclip_config(tiny_unclip)
    child = ProcessRenderer(config, decoder_space=SPACE)
    try:
        assert child.process.is_alive() and child.process.pid != os.getpid() and child.draws_embeddings
        picture = child.render_embedding(unit(0), 2)
        expected = EmbeddingDiffusionRenderer(config, decoder_space=SPACE).render_embedding(unit(0), 2)
        np.testing.assert_array_equal(picture, expected)
        with pytest.raises(RendererError, match="7-d"):
            child.render_embedding(np.ones(7, np.float32), 0)  # the child's error, and the child lives on
        assert child.process.is_alive()
    finally:
        child.close()
    with pytest.raises(RendererError, match="ViT-B-32"):  # the child refuses another space too
        ProcessRenderer(config, decoder_space="open_clip:ViT-B-32/laion2b_s34b_b79k")


def test_worker_renders_embeddings_in_a_child_process_and_falls_back_to_the_thumbnail_when_it_dies(tiny_unclip):
    state = SharedState()
    worker = RenderWorker(unclip_config(tiny_unclip), [], state, [],
                          retrieval=RetrievalRenderer.from_gallery(three_colour_index(), size=32),
                          decoder_space=SPACE).start()
    try:
        worker.submit_embedding(unit(0), 0, t_lsl=3.0, marker="n02389026_1", t_marker=2.9)
        wait_for(lambda: state.image is not None)
        image = state.image
        assert image.kind == "embedding-diffusion" and image.image.shape == (32, 32, 3)
        assert (image.class_index, image.class_name, image.t_decision, image.marker) == (0, "sorrel", 3.0, "n02389026_1")
        worker._renderer.process.kill()  # a crash in the child (driver fault, OOM killer)
        worker.submit_embedding(unit(1), 1)
        wait_for(lambda: "fallback" in state.renderer_kind)
        assert state.renderer_kind == "retrieval (fallback)" and "renderer process ended" in state.renderer_error
        worker.submit_embedding(unit(2), 2)
        wait_for(lambda: state.image.class_index == 2, 10)
        assert state.image.kind == "retrieval" and state.image.image[..., 2].min() == 255
    finally:
        worker.stop()


def test_a_missing_unclip_folder_gives_the_loaders_message(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(RendererError, match="no diffusers folder"):
        EmbeddingDiffusionRenderer(unclip_config(missing), decoder_space=SPACE)
    broken = tmp_path / "broken"
    broken.mkdir()  # a folder, but no pipeline in it
    with pytest.raises(RendererError, match="cannot load the diffusers folder"):
        EmbeddingDiffusionRenderer(unclip_config(broken), decoder_space=SPACE)


def embedding_card(space: str = SPACE) -> ModelCard:
    return ModelCard(sfreq=1000.0, ch_names=["O1", "Oz", "O2"], class_ids=[], class_names=[],
                     norm_mean=[[0.0] * 21] * 3, norm_std=[[1.0] * 21] * 3, output_kind="embedding",
                     embedding={"dim": DIM, "space": space, "checkpoint_sha256": "", "normalisation": "l2",
                                "logit_scale": 10.0})


def test_make_renderer_gives_an_embedding_model_its_space_and_the_gallery_thumbnails():
    from bci_stream.live.session import make_renderer

    state = SharedState()
    worker = make_renderer(RenderConfig(kind="gallery", size=16), embedding_card(), state, gallery=three_colour_index())
    try:
        assert worker.decoder_space == SPACE
        worker.submit_embedding(unit(0), 1)
        wait_for(lambda: state.image is not None, 5)
        assert state.image.kind == "retrieval" and state.image.image[..., 1].min() == 255
    finally:
        worker.stop()


def test_live_cli_options_pick_the_unclip_defaults_for_embedding_diffusion():
    from bci_stream.cli import build_parser
    from bci_stream.commands.live import render_config
    from bci_stream.render.base import UNCLIP_MODEL

    def config(*extra):
        return render_config(build_parser().parse_args(["live", "--model", "demo", *extra]))

    unclip = config("--renderer", "embedding-diffusion")
    assert (unclip.kind, unclip.diffusion_model, unclip.embedding_steps, unclip.embedding_space) == (
        "embedding-diffusion", UNCLIP_MODEL, RenderConfig.embedding_steps, None)
    given = config("--renderer", "embedding-diffusion", "--diffusion-model", "/x/unclip", "--steps", "8",
                   "--embedding-space", SPACE)
    assert (given.diffusion_model, given.embedding_steps, given.embedding_space) == ("/x/unclip", 8, SPACE)
    text = config("--renderer", "diffusion")
    assert (text.diffusion_model, text.steps) == (RenderConfig.diffusion_model, RenderConfig.steps)


def test_a_live_session_renders_its_decoded_embedding_through_unclip(tiny_embedding_model, phantom_gallery_file,
                                                                     semantic_phantom, tmp_path):
    """The whole path: a LiveSession of an embedding model decides by retrieval, offers the decision
    to the worker (``submit``), which draws the decoded embedding seeded by the top-1 retrieved row."""
    from bci_stream.live.decoder import Decoder
    from bci_stream.live.session import LiveConfig, LiveSession, make_renderer
    from bci_stream.retrieval.index import load_gallery
    from bci_stream.retrieval.retriever import Retriever
    from bci_stream.testing import CollectingSink, ScriptedSource

    space, dim = semantic_phantom.embedding_space, semantic_phantom.embeddings.shape[-1]
    folder = build_tiny_unclip_pipeline(tmp_path / "unclip16", embed_dim=dim)
    config = unclip_config(folder, embedding_space=space, in_process=True)
    decoder = Decoder(tiny_embedding_model, providers="cpu")
    gallery = load_gallery(phantom_gallery_file)
    source, outlet = ScriptedSource(decoder.card.n_channels), CollectingSink()
    session = LiveSession(decoder, LiveConfig(), source=source, outlet=outlet,
                          retriever=Retriever(gallery, k=3, logit_scale=decoder.card.embedding_spec().logit_scale))
    session.renderer = make_renderer(config, decoder.card, session.state, session.classes, session.gallery)
    try:
        source.feed(1000)
        session.step()
        decision = outlet.decisions[-1].retrieval
        wait_for(lambda: session.state.image is not None)
        image = session.state.image
        assert session.state.renderer_error == "" and image.kind == "embedding-diffusion"
        assert image.class_index == int(decision.rows[0]) and image.class_name == decision.labels[0]
        expected = EmbeddingDiffusionRenderer(config).render_embedding(decision.embedding, int(decision.rows[0]))
        np.testing.assert_array_equal(image.image, expected)
    finally:
        session.close()


def test_switching_kinds_swaps_a_default_pipeline_but_keeps_a_chosen_one():
    from bci_stream.render.base import UNCLIP_MODEL

    text = RenderConfig(kind="diffusion", steps=2)
    assert text.with_kind("embedding-diffusion").diffusion_model == UNCLIP_MODEL
    assert text.with_kind("embedding-diffusion").with_kind("diffusion") == text
    chosen = RenderConfig(kind="embedding-diffusion", diffusion_model="/models/unclip")
    assert chosen.with_kind("diffusion").diffusion_model == "/models/unclip"
    assert chosen.with_kind("gallery").kind == "gallery"
