"""``make demo``: a real recording (or the phantom headset) streamed over LSL and decoded live.

``--real`` (what ``make demo`` runs): a real Muse recording of a person looking at faces and houses
(eeg-notebooks' N170 subject 1, BSD-3-Clause, shipped in the package), replayed as published, decoded
in event mode by a model trained on that subject's OTHER recordings, each decision scored against the
picture that was really shown. Without ``--real``: the phantom headset and the phantom demo model.

Opens the viewer when a display is available, else prints decisions (headless). Everything stays
on this machine (liblsl is configured for loopback). The phantom streams a new recording session
(``bci_stream.sources.phantom.LIVE_SESSION``), not the training data: the accuracy shown is out-of-sample.

    python -m bci_stream.demo --real [--seconds 60] [--headless]
    python -m bci_stream.demo [--seconds 30] [--headless] [--renderer gallery|diffusion|none]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bci_stream.lsl.config import use_loopback
from bci_stream.resources import DEMO_MODEL as DEMO_MODEL_FILE
from bci_stream.resources import REAL_DEMO_EVENTS, REAL_DEMO_MODEL, REAL_DEMO_RECORDING, has_display
from bci_stream.sources.phantom import LIVE_SESSION, TRAINING_SESSION

DEMO_MODEL = DEMO_MODEL_FILE


def build_parser() -> argparse.ArgumentParser:
    """The demo's options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", action="store_true",
                        help="a real faces-vs-houses recording (Muse, shipped) instead of the phantom")
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop after this long (headless default: 20; --real: 60)")
    parser.add_argument("--headless", action="store_true", help="print decisions instead of opening the viewer")
    parser.add_argument("--model", default=None, help="the ONNX model (default: the demo's)")
    parser.add_argument("--gallery-index", default=None,
                        help="an embedding model's gallery index (the phantom's: `bci-stream index --phantom`); the "
                             "phantom then streams its semantic space")
    parser.add_argument("--renderer", default="gallery", choices=["gallery", "diffusion", "none"])
    parser.add_argument("--diffusion-model", default="stabilityai/sd-turbo")
    parser.add_argument("--screenshot", default=None, help="save a PNG of the viewer just before it closes")
    parser.add_argument("--mode", default="event", choices=["event", "continuous"],
                        help="event: one decision per stimulus, scored against what was shown (running accuracy "
                             "with its CI); continuous: a decision every 20 ms")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.real:
        return real_demo(args)
    args.model = args.model or str(DEMO_MODEL)

    if not Path(args.model).exists():
        print(f"no demo model at {args.model}; rebuild it with `make demo-model`", file=sys.stderr)
        return 2
    from bci_stream.contract.model_card import ModelCard

    card = ModelCard.from_onnx(args.model)
    headless = args.headless or not has_display()
    seconds = args.seconds if args.seconds is not None else (20.0 if headless else None)
    config_path = use_loopback()
    name = f"bci-stream-demo-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, LSLAPICFG=str(config_path))
    stream = _phantom_options(card, args.gallery_index)
    if stream is None:
        return 2
    simulator = subprocess.Popen(
        [sys.executable, "-m", "bci_stream.cli", "simulate", "--channels", str(card.n_channels), "--sfreq",
         str(card.sfreq), *stream, "--name", name, "--counter"], env=env)
    print(f"demo: phantom headset '{name}' ({card.n_channels} ch @ {card.sfreq:g} Hz) -> {Path(args.model).name} "
          f"({card.n_classes} classes; {card.split} test top-1 {card.evaluation.get('top1', float('nan')):.2f}) -> "
          f"{'printed decisions' if headless else 'viewer'}.\n"
          f"demo: the stream is a NEW recording session (phantom session {LIVE_SESSION}; the model was trained on "
          f"session {TRAINING_SESSION}): its noise and stimulus order are unseen, so the accuracy you see is "
          "out-of-sample", flush=True)
    time.sleep(1.5)
    from bci_stream.cli import main as bci_stream

    try:
        return bci_stream(_live_options(args, name, seconds, headless))
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)


def _phantom_options(card, gallery_index: str | None) -> list[str] | None:
    """``bci-stream simulate`` options for the phantom the model ``card`` decodes (an embedding model:
    the semantic phantom of its space ``phantom:seed=<s>,dim=<d>,classes=<n>,...``); None, said, when
    the demo cannot stream it."""
    stream = ["--classes", str(card.n_classes or 40)]
    if not card.is_embedding:
        return stream
    space = card.embedding_spec().space
    if not space.startswith("phantom:") or not gallery_index:
        print(f"the demo streams the phantom: an embedding model must be in a phantom space (this one: {space}) "
              "and come with --gallery-index", file=sys.stderr)
        return None
    fields = dict(item.split("=") for item in space.split(":", 1)[1].split(","))
    stream += ["--semantic", "--seed", fields["seed"], "--embed-dim", fields["dim"]]
    if "classes" in fields:
        stream[1] = fields["classes"]
    return stream


def _live_options(args, name: str, seconds: float | None, headless: bool) -> list[str]:
    """``bci-stream live`` options decoding the phantom stream ``name`` as the demo's ``args`` ask."""
    live = ["live", "--model", args.model, "--stream", name, "--markers", f"{name}-markers", "--mode", args.mode,
            "--smoothing", "5", "--renderer", args.renderer, "--diffusion-model", args.diffusion_model, "--image-size", "256"]
    if args.gallery_index:
        live += ["--gallery-index", args.gallery_index]
    if seconds is not None:
        live += ["--seconds", str(seconds)]
    if headless:
        live += ["--headless"]
    if args.screenshot:
        live += ["--screenshot", args.screenshot]
    return live


def real_demo(args) -> int:
    """Replay the shipped real recording over LSL and decode it live in event mode."""
    model = Path(args.model or REAL_DEMO_MODEL)
    if not model.exists() or not REAL_DEMO_RECORDING.exists():
        print(f"the real demo needs {model} and {REAL_DEMO_RECORDING}; rebuild them with "
              "`python tools/build_real_demo_model.py`", file=sys.stderr)
        return 2
    from bci_stream.contract.model_card import ModelCard

    card = ModelCard.from_onnx(model)
    headless = args.headless or not has_display()
    seconds = args.seconds if args.seconds is not None else (60.0 if headless else None)
    env = dict(os.environ, LSLAPICFG=str(use_loopback()))
    name = f"bci-stream-real-demo-{uuid.uuid4().hex[:6]}"
    replay = subprocess.Popen([sys.executable, "-m", "bci_stream.cli", "replay",
                               f"{REAL_DEMO_RECORDING},event_id={REAL_DEMO_EVENTS}", "--name", name, "--counter"], env=env)
    auc = card.evaluation.get("roc_auc")
    print(f"demo: a REAL recording: eeg-notebooks' Muse headband, subject 1 looking at faces and houses "
          f"({REAL_DEMO_RECORDING.name}, BSD-3-Clause), replayed at its own pace as '{name}' -> {model.name} "
          f"({', '.join(card.class_names)}; {card.architecture.get('student', 'a student')} trained on the subject's other recordings"
          + (f", ROC AUC {auc:.2f} there" if isinstance(auc, float) else "") + ").\n"
          "demo: each decision is one picture, decided 0.6 s after it appeared and scored against what was shown: "
          "single-trial EEG from a 4-electrode consumer headset, so expect well above chance (0.5), far from 1.",
          flush=True)
    time.sleep(1.5)
    from bci_stream.cli import main as bci_stream

    live = ["live", "--model", str(model), "--stream", name, "--markers", f"{name}-markers", "--mode", "event",
            "--renderer", "none" if headless else args.renderer]
    live += ["--seconds", str(seconds)] if seconds is not None else []
    live += ["--headless"] if headless else []
    live += ["--screenshot", args.screenshot] if args.screenshot else []
    try:
        return bci_stream(live)
    finally:
        replay.terminate()
        replay.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
