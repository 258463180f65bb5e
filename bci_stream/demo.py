"""``make demo``: the phantom headset streaming over LSL, decoded live by the shipped demo model.

Opens the viewer when a display is available, else prints decisions (headless). Everything stays
on this machine (liblsl is configured for loopback). The phantom streams a new recording session
(``bci_stream.phantom.LIVE_SESSION``), not the training data: the accuracy shown is out-of-sample.

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

from bci_stream.lsl_config import use_loopback
from bci_stream.phantom import LIVE_SESSION, TRAINING_SESSION
from bci_stream.resources import DEMO_MODEL as DEMO_MODEL_FILE
from bci_stream.resources import has_display

DEMO_MODEL = DEMO_MODEL_FILE




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (headless default: 20)")
    parser.add_argument("--headless", action="store_true", help="print decisions instead of opening the viewer")
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--gallery-index", default=None,
                        help="an embedding model's gallery index (the phantom's: `bci-stream index --phantom`); the "
                             "phantom then streams its semantic space")
    parser.add_argument("--renderer", default="gallery", choices=["gallery", "diffusion", "none"])
    parser.add_argument("--diffusion-model", default="stabilityai/sd-turbo")
    parser.add_argument("--screenshot", default=None, help="save a PNG of the viewer just before it closes")
    parser.add_argument("--mode", default="event", choices=["event", "continuous"],
                        help="event: one decision per stimulus, scored against what was shown (running accuracy "
                             "with its CI); continuous: a decision every 20 ms")
    args = parser.parse_args(argv)

    if not Path(args.model).exists():
        print(f"no demo model at {args.model}; rebuild it with `make demo-model`", file=sys.stderr)
        return 2
    from bci_stream.model_card import ModelCard

    card = ModelCard.from_onnx(args.model)
    headless = args.headless or not has_display()
    seconds = args.seconds if args.seconds is not None else (20.0 if headless else None)
    config_path = use_loopback()
    name = f"bci-stream-demo-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, LSLAPICFG=str(config_path))
    stream = ["--classes", str(card.n_classes or 40)]
    if card.is_embedding:  # the semantic phantom of the card's space "phantom:seed=<s>,dim=<d>,classes=<n>,..."
        space = card.embedding_spec().space
        if not space.startswith("phantom:") or not args.gallery_index:
            print(f"the demo streams the phantom: an embedding model must be in a phantom space (this one: {space}) "
                  "and come with --gallery-index", file=sys.stderr)
            return 2
        fields = dict(item.split("=") for item in space.split(":", 1)[1].split(","))
        stream += ["--semantic", "--seed", fields["seed"], "--embed-dim", fields["dim"]]
        if "classes" in fields:
            stream[1] = fields["classes"]
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
    try:
        return bci_stream(live)
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
