#!/usr/bin/env python
"""Renderer throughput: images/s and latency of the diffusion renderers' pipeline calls.

    python tools/bench_render.py --model PATH_OR_HUB_ID      # a real pipeline (local folder / cache)
    python tools/bench_render.py --random sd-turbo            # SD-Turbo's architecture, random weights (GPU)
    python tools/bench_render.py --random tiny                # CPU smoke figure
    python tools/bench_render.py --random sd-turbo --tiny-vae --through-renderer \
        --decoder demo                      # the live path, and decoding beside it

The embedding-conditioned renderer (unCLIP, ``--renderer embedding-diffusion``), measured beside the
text-prompt renderer in the same run (``--text-baseline``: SD-Turbo's architecture, or the tiny one):

    python tools/bench_render.py --random unclip --json unclip.json      # SD 2.1 unCLIP's architecture (GPU)
    python tools/bench_render.py --random unclip-small                   # its ViT-L/14 variant
    python tools/bench_render.py --model PATH_OR_HUB_ID --kind embedding --embedding-steps 20
    python tools/bench_render.py --random unclip-tiny --repeats 3        # CPU smoke figure

Target (ARCHITECTURE.md): >= 30 images/s at 512 x 512, 1 step, on one H100 (text prompt, SD-Turbo).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # dummy_pipelines: random-weight pipelines live with the tests (diffusers' way)


EMBEDDING_RANDOM = ("unclip-tiny", "unclip", "unclip-small")


def main() -> int:
    from bci_stream.render.base import RenderConfig

    render = RenderConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--kind", choices=["text", "embedding"], default=None,
                        help="what --model is: a text-to-image pipeline, or an unCLIP (embedding) pipeline")
    parser.add_argument("--random", choices=["tiny", "sd-turbo", *EMBEDDING_RANDOM], default=None)
    parser.add_argument("--text-baseline", default=None, metavar="tiny|sd-turbo|none|PATH",
                        help="with an embedding renderer: the text-prompt renderer measured beside it (default: tiny "
                             "beside unclip-tiny, else sd-turbo)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=1, help="text-prompt renderer's denoising steps")
    parser.add_argument("--embedding-steps", type=int, default=render.embedding_steps,
                        help="embedding renderer's denoising steps")
    parser.add_argument("--guidance", type=float, default=render.embedding_guidance,
                        help="embedding renderer's classifier-free guidance (> 1 doubles the UNet batch)")
    parser.add_argument("--batch", type=int, default=1, help="prompts per pipeline call")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet with CUDA graphs (GPU)")
    parser.add_argument("--tiny-vae", action="store_true",
                        help="decode with a TAESD-architecture AutoencoderTiny (random weights with --random)")
    parser.add_argument("--through-renderer", action="store_true",
                        help="save the pipeline, load it back with the renderer's loader and time its render "
                             "(seeded generator, PIL output: what the live renderer does)")
    parser.add_argument("--decoder", default=None,
                        help="an ONNX model: time Decoder.classify alone and while the RenderWorker renders")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    args.through_renderer |= args.decoder is not None  # decoding is measured beside the live renderer
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device_name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    if args.random in EMBEDDING_RANDOM or args.kind == "embedding":
        baseline = args.text_baseline or ("tiny" if args.random == "unclip-tiny" else "sd-turbo")
        result = {"device": device_name, "embedding": embedding_figures(args, device)}
        if baseline != "none":
            text_args = argparse.Namespace(**{**vars(args), "through_renderer": False, "decoder": None})
            text_args.random, text_args.model = (baseline, None) if baseline in ("tiny", "sd-turbo") else (None, baseline)
            result["text"] = text_figures(text_args, device)[0]
        for name in ("text", "embedding"):
            if name in result:
                r = result[name]
                print(f"{name:>9}: {r['pipeline']} {r['steps']} step(s): {r['images_per_s']:.2f} pictures/s, "
                      f"p50 {r['latency_ms_p50']:.1f} ms, p95 {r['latency_ms_p95']:.1f} ms")
    else:
        result, config, renderer = text_figures(args, device)
        result["device"] = device_name
        if args.decoder:
            result["decoding"] = decoding_beside_renderer(args.decoder, config, renderer)
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


def bench_pipeline(args, device: str, sized, build_tiny, tiny_random: str, load):
    """``(pipeline, source, device)`` for one renderer: ``sized(device)`` (an architecture with random
    weights, no files) when given; else ``--model``, or the tiny pipeline (``build_tiny(folder)``, for
    ``--random tiny_random`` or no model) loaded back by the app's ``load(source, device)``. With
    ``--tiny-vae`` and random weights, TAESD's architecture decodes; no progress bars."""
    if sized is not None:
        pipe, source = sized(device), args.random
    else:
        source = args.model
        if args.random == tiny_random or source is None:
            source = str(build_tiny(Path(tempfile.mkdtemp()) / tiny_random))
        pipe, device = load(source, device)
    if args.tiny_vae and args.random:
        from diffusers import AutoencoderTiny

        pipe.vae = AutoencoderTiny().to(device, pipe.unet.dtype)  # TAESD's architecture, random weights
    pipe.set_progress_bar_config(disable=True)
    return pipe, source, device


def text_figures(args, device: str):
    """The text-prompt renderer's figures ``(result, RenderConfig or None, DiffusionRenderer or None)``."""
    import dummy_pipelines
    import torch

    from bci_stream.render.diffusion import load_text2image

    pipe, _, device = bench_pipeline(args, device, sized=dummy_pipelines.sd_turbo_sized_pipeline if
                                     args.random == "sd-turbo" else None,
                                     build_tiny=dummy_pipelines.build_tiny_pipeline, tiny_random="tiny",
                                     load=load_text2image)
    renderer = config = None
    if args.through_renderer:
        from bci_stream.render.diffusion import DiffusionRenderer

        config = save_for_renderer(pipe, args, device)
        renderer = DiffusionRenderer(config)
        pipe = renderer.pipe
    elif args.compile:  # CUDA graphs: a 1-step render is bound by kernel launches, not arithmetic
        pipe.unet = torch.compile(pipe.unet, mode="reduce-overhead", fullgraph=True)
    if renderer is not None:
        once = lambda: renderer.render(0, "sorrel")  # noqa: E731
    else:
        prompts = ["an image of a sorrel"] * args.batch

        def once():
            with torch.inference_mode():
                pipe(prompts, num_inference_steps=args.steps, guidance_scale=0.0, height=args.size, width=args.size,
                     output_type="np")
            if device == "cuda":
                torch.cuda.synchronize()

    times = time_calls(once, args.repeats)
    batch = 1 if renderer is not None else args.batch
    result = {"renderer": "diffusion (text prompt)", "pipeline": args.random or args.model,
              "vae": "AutoencoderTiny (TAESD)" if args.tiny_vae else "AutoencoderKL",
              "path": "DiffusionRenderer.render" if renderer is not None else "pipeline call",
              "size": args.size, "steps": args.steps, "guidance": 0.0, "batch": batch,
              "latency_ms_p50": float(np.median(times) * 1e3), "latency_ms_p95": float(np.percentile(times, 95) * 1e3),
              "images_per_s": float(batch / np.median(times))}
    return result, config, renderer


def embedding_figures(args, device: str) -> dict:
    """The embedding-conditioned renderer's figures: ``EmbeddingDiffusionRenderer.render_embedding`` of a
    random unit vector (the live renderer's work: scaling, seeded generator, empty-prompt embeddings
    computed once, unCLIP pipeline, PIL output), on an in-memory pipeline or, with
    ``--through-renderer``, one saved and loaded back by the renderer's own loader."""
    import dummy_pipelines
    import torch

    from bci_stream.render.base import RenderConfig
    from bci_stream.render.embedding_diffusion import EmbeddingDiffusionRenderer, load_unclip

    sized = None
    if args.random in ("unclip", "unclip-small"):
        sized = lambda dev: dummy_pipelines.unclip_sized_pipeline(dev, small=args.random == "unclip-small")  # noqa: E731
    pipe, source, device = bench_pipeline(args, device, sized=sized, build_tiny=dummy_pipelines.build_tiny_unclip_pipeline,
                                          tiny_random="unclip-tiny", load=load_unclip)
    config = RenderConfig(kind="embedding-diffusion", diffusion_model=str(source), size=args.size,
                          embedding_steps=args.embedding_steps, embedding_guidance=args.guidance, device=device,
                          compile=args.compile, embedding_space="bench (not checked)")
    if args.through_renderer:
        folder = Path(tempfile.mkdtemp()) / "unclip"
        pipe.save_pretrained(folder)
        from dataclasses import replace

        renderer = EmbeddingDiffusionRenderer(replace(config, diffusion_model=str(folder)))
    else:
        if args.compile:
            pipe.unet = torch.compile(pipe.unet, mode="reduce-overhead", fullgraph=True)
        renderer = EmbeddingDiffusionRenderer(config, pipe=pipe)
    vector = np.random.default_rng(0).standard_normal(renderer.dim).astype(np.float32)
    times = time_calls(lambda: renderer.render_embedding(vector, 0), args.repeats)
    return {"renderer": "embedding-diffusion (unCLIP)", "pipeline": args.random or args.model,
            "vae": "AutoencoderTiny (TAESD)" if args.tiny_vae else "AutoencoderKL",
            "path": "EmbeddingDiffusionRenderer.render_embedding", "loaded_through_renderer": args.through_renderer,
            "size": args.size, "steps": args.embedding_steps, "guidance": args.guidance, "embedding_dim": renderer.dim,
            "latency_ms_p50": float(np.median(times) * 1e3), "latency_ms_p95": float(np.percentile(times, 95) * 1e3),
            "images_per_s": float(1 / np.median(times))}


def time_calls(fn, repeats: int, warm_up: int = 3) -> np.ndarray:
    """Wall seconds of ``repeats`` calls after ``warm_up`` untimed ones."""
    for _ in range(warm_up):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return np.array(times)


def save_for_renderer(pipe, args, device: str):
    """Save ``pipe`` (and its tiny VAE) for ``DiffusionRenderer``'s own loader; returns the RenderConfig."""
    from bci_stream.render.base import RenderConfig

    folder = Path(tempfile.mkdtemp())
    taesd = None
    if args.tiny_vae:
        from diffusers import AutoencoderKL

        pipe.vae.save_pretrained(folder / "taesd")
        taesd = str(folder / "taesd")
        pipe.vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                                 down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    pipe.save_pretrained(folder / "pipeline")
    return RenderConfig(kind="diffusion", diffusion_model=str(folder / "pipeline"), steps=args.steps, size=args.size,
                        device=device, taesd=taesd, compile=args.compile)


def _beside(worker, priority, percentiles, prediction, names: list[str]) -> dict:
    """``percentiles()`` under ``priority()`` while ``worker`` renders a new class every 20-ms hop
    (``prediction(probabilities, top5)`` makes each decision), with its render rate."""
    done = threading.Event()

    def feed():  # a new class every 20 ms hop: the renderer never rests
        i = 0
        while not done.is_set():
            p = np.full(len(names), 0.01)
            p[i % len(names)] = 0.97
            worker.submit(prediction(p, [i % len(names), 0, 1, 2, 3]))
            i += 1
            time.sleep(0.02)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    deadline = time.monotonic() + 900  # a child process loads (and may compile) first
    while worker.n_rendered < 3 and time.monotonic() < deadline and not worker.state.renderer_error:
        time.sleep(0.05)
    before, t0 = worker.n_rendered, time.monotonic()
    with priority():
        figures = percentiles()
    figures["renders_per_s"] = (worker.n_rendered - before) / (time.monotonic() - t0)
    figures["renderer_error"] = worker.state.renderer_error
    done.set()
    feeder.join()
    worker.stop()
    return figures


def decoding_beside_renderer(model: str, config, renderer, repeats: int = 3000) -> dict:
    """``Decoder.classify`` latency (ms) alone, then while a ``RenderWorker`` renders without pause:
    on a thread of this process (Python's default GIL switch interval, then the live loop's), and in
    a child process (what ``bci-stream live`` does). The renderer must not slow decoding."""
    from dataclasses import replace

    from threadpoolctl import threadpool_limits

    from bci_stream.live.decoder import Decoder
    from bci_stream.live.prediction import Prediction
    from bci_stream.live.session import decoding_priority
    from bci_stream.render.worker import RenderWorker

    decoder = Decoder(model, providers="cpu")
    window = np.random.default_rng(0).standard_normal(
        (decoder.card.n_channels, decoder.card.window_samples)).astype(np.float32)
    names = ["sorrel", "tabby", "piano", "airliner"]

    def percentiles() -> dict:
        t = time_calls(lambda: decoder.classify(window), repeats) * 1e3
        return {"p50": float(np.median(t)), "p99": float(np.percentile(t, 99)), "max": float(t.max())}

    def blas_only():
        return threadpool_limits(limits=1, user_api="blas")

    def beside(worker: RenderWorker, priority) -> dict:
        return _beside(worker, priority, percentiles, lambda p, top5: Prediction(0.0, 0.0, p, top5, 0, 0.0), names)

    with decoding_priority():
        result = {"classify_ms_alone": percentiles()}
    thread_config = replace(config, in_process=True)
    result["classify_ms_renderer_thread_default_switch_interval"] = beside(
        RenderWorker(thread_config, names, renderer=renderer).start(), blas_only)
    result["classify_ms_renderer_thread"] = beside(RenderWorker(thread_config, names, renderer=renderer).start(),
                                                   decoding_priority)
    result["classify_ms_renderer_process"] = beside(RenderWorker(replace(config, in_process=False), names).start(),
                                                    decoding_priority)
    return result


if __name__ == "__main__":
    sys.exit(main())
