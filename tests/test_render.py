"""Renderers: a tiny random diffusers pipeline through the real loader, the gallery, and the worker."""

import os
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from dummy_pipelines import build_tiny_pipeline
from PIL import Image
from waiting import submit_while_busy

from bci_stream.live.prediction import Prediction
from bci_stream.live.state import SharedState
from bci_stream.render import RenderConfig, RendererError, RenderWorker
from bci_stream.render.base import RendererBase
from bci_stream.render.diffusion import DiffusionRenderer, load_text2image
from bci_stream.render.exemplars import GalleryRenderer, card
from bci_stream.render.process import ProcessRenderer

NAMES = ["sorrel", "parachute", "iron"]
IDS = ["n02389026", "n03888257", "n03584829"]


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))


def prediction(index: int, p: float = 0.9, n: int = 3) -> Prediction:
    probs = np.full(n, (1 - p) / (n - 1))
    probs[index] = p
    order = [int(i) for i in np.argsort(-probs)]
    return Prediction(0.0, 0.0, probs, order, 0, 0.0)


def test_diffusion_renderer_loads_from_folder_and_is_seeded(tiny_sd):
    config = RenderConfig(kind="diffusion", diffusion_model=str(tiny_sd), size=64, steps=1)
    renderer = DiffusionRenderer(config)
    a = renderer.render(1, "parachute")
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, renderer.render(1, "parachute"))  # same class, same seed
    assert not np.array_equal(a, renderer.render(2, "iron"))
    # the cached prompt embeddings give what the pipeline gives for the prompt text itself
    import torch

    direct = renderer.pipe("an image of a parachute", num_inference_steps=1, guidance_scale=0.0, height=64, width=64,
                           generator=torch.Generator().manual_seed(config.seed + 1)).images[0]
    np.testing.assert_array_equal(a, np.asarray(direct.convert("RGB")))
    assert list(renderer._prompt_embeds) == ["an image of a parachute", "an image of a iron"]


def test_img2img_option_uses_the_previous_frame(tiny_sd):
    """The second picture goes through the img2img pipe, started from the first; a plain render of the
    same class and seed gives the first again, so the second differs from it."""
    config = RenderConfig(kind="diffusion", diffusion_model=str(tiny_sd), size=64, steps=1, img2img_strength=0.5)
    renderer = DiffusionRenderer(config)
    calls = []
    img2img = renderer._img2img

    def counting(*args, **kwargs):
        calls.append(np.asarray(kwargs["image"].convert("RGB")))
        return img2img(*args, **kwargs)

    renderer._img2img = counting
    first = renderer.render(0, "sorrel")
    assert calls == []  # nothing to start from yet: a plain render
    second = renderer.render(0, "sorrel")
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], first)  # started from the previous frame
    plain = DiffusionRenderer(replace(config, img2img_strength=0.0), pipe=renderer.pipe).render(0, "sorrel")
    np.testing.assert_array_equal(plain, first)  # seeded: a plain render is the first frame again
    assert second.shape == first.shape and not np.array_equal(second, plain)


def test_missing_weights_give_an_offline_message(tmp_path):
    with pytest.raises(RendererError, match="no network at run time"):
        load_text2image("stabilityai/sd-turbo", device="cpu")
    with pytest.raises(RendererError, match="folder"):
        load_text2image(str(tmp_path), device="cpu")


def test_gallery_uses_exemplars_or_draws_a_card(tmp_path):
    (tmp_path / "n03888257").mkdir()
    Image.new("RGB", (90, 60), (255, 0, 0)).save(tmp_path / "n03888257" / "a.jpg")
    Image.new("RGB", (60, 90), (0, 0, 255)).save(tmp_path / "n02389026_5.JPEG")
    gallery = GalleryRenderer(NAMES, IDS, str(tmp_path), size=32)
    red = gallery.render(1, "parachute")
    assert red.shape == (32, 32, 3) and red[..., 0].mean() > 200 and red[..., 2].mean() < 50
    assert gallery.render(0, "sorrel")[..., 2].mean() > 200
    drawn = gallery.render(2, "iron")  # no exemplar: a card
    np.testing.assert_array_equal(drawn, card("iron", 2, 32))
    assert len(np.unique(drawn.reshape(-1, 3), axis=0)) > 1  # the text is drawn on it
    with pytest.raises(FileNotFoundError):
        GalleryRenderer(NAMES, IDS, str(tmp_path / "nope"))


class SlowRenderer(RendererBase):
    """Holds each render until ``release`` is set; ``started`` is set once the first render began."""

    kind = "slow"

    def __init__(self):
        self.rendered = []
        self.started = threading.Event()
        self.release = threading.Event()

    def render(self, index, name):
        self.started.set()
        self.release.wait()
        self.rendered.append(index)
        return np.zeros((8, 8, 3), np.uint8)


def test_worker_is_latest_wins_and_submit_never_blocks():
    slow = SlowRenderer()
    state = SharedState()
    worker = RenderWorker(RenderConfig(kind="gallery"), NAMES, state, IDS, renderer=slow).start()
    try:
        assert worker.submit(prediction(0))
        assert slow.started.wait(timeout=30)  # the worker is now stuck rendering class 0
        accepted = submit_while_busy(lambda k: worker.submit(prediction(k)), (1, 2, 1, 2, 2))
        assert not slow.release.is_set() and slow.rendered == []  # they returned while the renderer was held
        assert accepted == [True, True, True, True, False]  # the last: same class again, nothing to do
        slow.release.set()
        deadline = time.monotonic() + 30  # a bound on the test
        shown = lambda: state.image is not None and state.image.class_index == 2  # noqa: E731
        while not (worker.n_rendered >= 2 and shown()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow.rendered == [0, 2]  # 1, 2, 1 were superseded; only the newest was rendered
        assert worker.n_dropped == 3  # 5 accepted = 2 rendered + 3 dropped: nothing is left to render
        assert state.image is not None and state.image.class_index == 2
    finally:
        slow.release.set()
        worker.stop()


def test_worker_skips_unconfident_decisions():
    worker = RenderWorker(RenderConfig(kind="gallery", min_confidence=0.5), NAMES, SharedState(), IDS)
    assert not worker.submit(prediction(1, p=0.4))
    assert worker.submit(prediction(1, p=0.8))


class Exploding(RendererBase):
    kind = "diffusion"

    def render(self, index, name):
        raise RuntimeError("CUDA out of memory")


def test_worker_falls_back_to_gallery_on_failure():
    state = SharedState()
    worker = RenderWorker(RenderConfig(kind="diffusion", size=16), NAMES, state, IDS, renderer=Exploding()).start()
    try:
        worker.submit(prediction(0))
        deadline = time.time() + 5
        while "fallback" not in state.renderer_kind and time.time() < deadline:
            time.sleep(0.02)
        assert "CUDA out of memory" in state.renderer_error
        worker.submit(prediction(1))
        while state.image is None and time.time() < deadline:
            time.sleep(0.02)
        assert state.image.kind == "gallery" and state.image.class_name == "parachute"
    finally:
        worker.stop()


def test_worker_reports_unloadable_diffusion_model():
    state = SharedState()
    worker = RenderWorker(RenderConfig(kind="diffusion", diffusion_model="stabilityai/sd-turbo", device="cpu", size=16),
                          NAMES, state, IDS).start()
    try:
        worker.submit(prediction(2))
        deadline = time.time() + 60  # the renderer process imports torch and diffusers first
        while state.image is None and time.time() < deadline:
            time.sleep(0.05)
        assert "no network at run time" in state.renderer_error
        assert "RendererError" not in state.renderer_error  # no "RendererError: RendererError:" stutter
        assert state.image.kind == "gallery"
    finally:
        worker.stop()


def test_renderer_process_draws_what_the_in_process_renderer_draws(tiny_sd):
    config = RenderConfig(kind="diffusion", diffusion_model=str(tiny_sd), size=64, steps=1, device="cpu")
    child = ProcessRenderer(config)
    try:
        assert child.process.is_alive() and child.process.pid != os.getpid()
        picture = child.render(1, "parachute")
        np.testing.assert_array_equal(picture, DiffusionRenderer(config).render(1, "parachute"))
        child.process.kill()  # a crash in the child (driver fault, OOM killer) ...
        with pytest.raises(RendererError, match="renderer process ended"):
            child.render(0, "sorrel")  # ... is an error the worker can fall back on, never a hang
    finally:
        child.close()
    assert not child.process.is_alive()


def test_worker_runs_diffusion_in_a_child_process_and_falls_back_when_it_dies(tiny_sd):
    state = SharedState()
    config = RenderConfig(kind="diffusion", diffusion_model=str(tiny_sd), size=64, steps=1, device="cpu")
    worker = RenderWorker(config, NAMES, state, IDS).start()
    try:
        worker.submit(prediction(0))
        deadline = time.time() + 60
        while state.image is None and time.time() < deadline:
            time.sleep(0.05)
        assert state.image.kind == "diffusion" and state.image.image.shape == (64, 64, 3)
        worker._renderer.process.kill()
        worker.submit(prediction(1))
        while "fallback" not in state.renderer_kind and time.time() < deadline:
            time.sleep(0.05)
        assert "renderer process ended" in state.renderer_error
        worker.submit(prediction(2))
        while state.image.class_index != 2 and time.time() < deadline:
            time.sleep(0.05)
        assert state.image.kind == "gallery"
    finally:
        worker.stop()
