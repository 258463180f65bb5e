"""``bci-stream``: simulate a headset, replay a recording, decode live, inspect a model."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from bci_stream.cli_types import (
    float_range,
    int_range,
    non_negative_int,
    positive_float,
    positive_int,
    wait_seconds,
)
from bci_stream.offline_env import set_offline_environment

log = logging.getLogger("bci_stream")
LINGER_SECONDS = 1.0  # a finished replay keeps its outlets this long: the consumers' last pulls reach them

N_PHANTOM_CLASSES = 40  # the EEG-ImageNet classes the phantom can show (bci_stream/data/eegimagenet_classes.tsv)
N_PHANTOM_SUBJECTS = 6  # PhantomConfig.n_subjects


def cmd_simulate(args) -> int:
    from bci_stream.phantom import TRAINING_SESSION, PhantomConfig
    from bci_stream.simulate import OutletConfig, phantom_pusher

    config = PhantomConfig(n_channels=args.channels, sfreq=args.sfreq, n_classes=args.classes, seed=args.seed)
    outlet = OutletConfig(name=args.name, source_id=args.source_id or args.name, chunk=args.chunk, counter=args.counter)
    pusher = phantom_pusher(config, outlet, subject=args.subject, isi=args.isi, blocks=args.blocks,
                            session=args.session)
    seen = ("the TRAINING session: a model trained on the phantom has seen these trials, so its accuracy here is "
            "not out-of-sample" if args.session == TRAINING_SESSION else
            f"a new recording session (models trained on the phantom saw training session {TRAINING_SESSION} only)")
    print(f"streaming phantom: {args.channels} ch @ {args.sfreq:g} Hz as LSL '{args.name}' (+ '{args.name}-markers'), "
          f"{args.classes} classes, a stimulus every {args.isi:g} s{', SAMPLE_INDEX channel' if args.counter else ''}, "
          f"subject {args.subject}, session {args.session}: {seen}. Ctrl-C stops.", flush=True)
    last = [0.0]

    def report(p):
        if args.verbose_stream and p.sent / config.sfreq - last[0] >= 1.0:
            last[0] = p.sent / config.sfreq
            print(f"  t={last[0]:6.1f} s  samples sent {p.sent}", flush=True)

    _stop_on_signals(pusher.stop)
    pusher.run(duration=args.duration, on_chunk=report)
    time.sleep(LINGER_SECONDS)  # let inlets take the last chunks before the outlets leave with this process
    print(f"sent {pusher.sent} samples ({pusher.sent / config.sfreq:.1f} s)")
    return 0


def cmd_replay(args) -> int:
    from bci_stream.io import read_recording
    from bci_stream.replay import recording_pusher
    from bci_stream.simulate import OutletConfig

    kwargs = {"subject": args.subject} if args.subject is not None and args.file.endswith(".pth") else {}
    if args.event_field:
        kwargs["event_field"] = args.event_field
    rec = read_recording(args.file, **kwargs)
    name = args.name or Path(args.file).stem
    outlet = OutletConfig(name=name, source_id=args.source_id or f"replay-{name}", chunk=args.chunk, counter=args.counter)
    pusher = recording_pusher(rec, outlet, speed=args.speed, loop=args.loop)
    print(f"replaying {args.file}: {len(rec.ch_names)} ch @ {rec.sfreq:g} Hz, {rec.duration:.1f} s, "
          f"{len(rec.events)} markers, as LSL '{name}' (+ '{name}-markers') at {args.speed:g}x"
          f"{', looping' if args.loop else ''}. Ctrl-C stops.", flush=True)
    _stop_on_signals(pusher.stop)
    if args.wait_for_consumer:
        print(f"waiting up to {args.wait_for_consumer:g} s for a consumer (e.g. `bci-stream live`)", flush=True)
        pusher.eeg.wait_for_consumers(args.wait_for_consumer)
        if pusher.markers.have_consumers() or pusher.markers.wait_for_consumers(min(5.0, args.wait_for_consumer)):
            time.sleep(0.2)  # the consumer's marker inlet subscribes just after it connects
    pusher.run(duration=args.duration)
    time.sleep(LINGER_SECONDS)  # let inlets take the last chunks before the outlets leave with this process
    print(f"sent {pusher.sent} samples")
    return 0


def cmd_info(args) -> int:
    import json

    from bci_stream.model_card import ModelCard

    card = ModelCard.from_onnx(args.model)
    hidden = ("norm_mean", "norm_std", "ch_names", "class_ids", "class_names", "preprocessing")
    summary = {k: v for k, v in json.loads(card.to_json()).items() if k not in hidden}
    summary["channels"] = f"{card.n_channels}: {', '.join(card.ch_names[:8])} ..."
    summary["classes"] = f"{card.n_classes}: {', '.join(card.class_names[:6])} ..."
    summary["input shape"] = card.feature_shape()
    summary["features"] = card.features().describe()
    summary["stream must be"] = (f"{card.input_sfreq:g} Hz, samples in {card.signal_unit} "
                                 "(V/mV/uV/nV streams are converted)")
    summary["preprocessing"] = card.preprocessing_spec().describe()
    print(json.dumps(summary, indent=1, default=str))
    return 0


def render_config(args):
    """The renderer settings named by ``--renderer`` and its options, or None for ``none``."""
    if args.renderer == "none":
        return None
    from bci_stream.render import RenderConfig

    return RenderConfig(kind=args.renderer, gallery_dir=args.gallery, diffusion_model=args.diffusion_model,
                        steps=args.steps, size=args.image_size, taesd=args.taesd, img2img_strength=args.img2img,
                        compile=args.compile_renderer, in_process=args.renderer_in_process)


def cmd_live(args) -> int:
    from bci_stream.live import LiveConfig, LiveSpec
    from bci_stream.wait import WaitConfig

    if not args.headless and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                  or os.environ.get("QT_QPA_PLATFORM")):
        raise RuntimeError("no display for the viewer: add --headless (or run under xvfb-run)")
    config = LiveConfig(stream=args.stream, markers=args.markers, mode=args.mode, hop=args.hop,
                        smoothing=args.smoothing, log_path=Path(args.log) if args.log else None,
                        resolve_timeout=args.resolve_timeout, outlet_name=args.outlet_name,
                        assume_unit=args.assume_unit, wait=WaitConfig(args.wait),
                        stimuli=tuple(p.strip() for p in args.stimuli.split(",") if p.strip()) if args.stimuli else None)
    spec = LiveSpec(model=args.model, providers=args.providers, smoothing=args.smoothing, live=config,
                    render=render_config(args), seconds=args.seconds)
    if args.headless:
        summary = _live_headless(spec, args.print_every)
    else:  # the viewer here, decoding in a child process (Qt's painting would hold up its GIL)
        from bci_stream.viewer.app import run_viewer_with_decoding_process

        print(f"decoding with {args.model} in a child process; the viewer shows it", flush=True)
        summary = run_viewer_with_decoding_process(spec, screenshot=args.screenshot)
        if summary is None:
            print("the decoding process ended without a summary (its error is printed above)", file=sys.stderr)
            return 1
    print(f"{summary['n_decisions']} decisions, {summary['n_withheld']} withheld, latency p50 "
          f"{summary['p50']:.2f} ms p99 {summary['p99']:.2f} ms, lost samples {summary['lost_samples']}, "
          f"gaps {summary['gaps']} ({summary['seconds_down']:.2f} s), markers {summary['marker_status']}"
          + (f"\nWARNING at the end: {summary['ood_warning']}" if summary["ood_warning"] else ""))
    if summary.get("log_error"):  # decoding went on, but the record of it is incomplete
        print(f"bci-stream live: error: {summary['log_error']}", file=sys.stderr)
        return EXIT_LOG_FAILED
    return 0


def _live_headless(spec, print_every: int) -> dict:
    from bci_stream.live import build_session

    printer = HeadlessPrinter([], every=print_every)
    session = build_session(spec, listeners=[printer])
    decoder = session.decoder
    printer.class_names, printer.ood_warning = list(decoder.card.class_names), lambda: decoder.ood.warning
    _stop_on_signals(session.stop)  # also ends a wait for the stream
    try:
        session.start()
        print(f"decoding with {spec.model} on {decoder.provider} ({spec.live.mode}, {decoder.card.n_classes} classes, "
              f"window {decoder.card.window_length:g} s, hop {session.hop / decoder.card.sfreq * 1000:g} ms)", flush=True)
        print(describe_session(session.describe()), flush=True)
        session.run(seconds=spec.seconds)
    finally:
        if session.outlet is None and session.renderer is not None:  # never started: run() did not close it
            session.renderer.stop()
    return session.state.summary()


def describe_session(d: dict) -> str:
    """What a live session connected to, in a few lines (from :meth:`LiveSession.describe`)."""
    s = d["stream"]
    lines = [f"  EEG: {s.get('name')!r} (source_id {s.get('source_id')!r}, host {s.get('host')}, "
             f"{s.get('channels')} ch @ {s.get('sfreq', 0):g} Hz, unit {s.get('unit', '?')})"]
    for r in d["rejected_streams"]:
        lines.append(f"  not taken: {r['name']!r}: {r['why']}")
    m = d["markers"]
    if m:
        others = f"; also seen: {', '.join(m['others'])}" if m["others"] else ""
        lines.append(f"  markers: {m['name']!r} (host {m['host']}; {m['why']}{others})")
    lines.append(f"  preprocessing: {d['model']['preprocessing']}")
    if d["outlet"]:
        lines.append(f"  predictions: LSL {d['outlet']['name']!r} (source_id {d['outlet']['source_id']!r})")
    return "\n".join(lines)


class HeadlessPrinter:
    """Prints one line per decision (every ``every``-th in continuous mode)."""

    def __init__(self, class_names: list[str], every: int = 1, ood_warning=lambda: ""):
        self.class_names, self.every, self.n = class_names, max(1, every), 0
        self.ood_warning, self.warned = ood_warning, ""

    def __call__(self, p) -> None:
        self.n += 1
        if p.marker is None and self.n % self.every:
            return
        top = p.top5[0]
        marker = f"  marker {p.marker}" if p.marker else ""
        ood = f"  input z {p.ood_bias:+.1f}/{p.ood_rms:.1f}" if p.ood_rms == p.ood_rms else ""
        print(f"#{self.n:6d} sample {p.window_end_sample:9d}  {self.class_names[top]:>20s} "
              f"{p.probabilities[top]:.2f}  latency {p.latency_ms:6.2f} ms{ood}{marker}", flush=True)
        if self.warned != self.ood_warning():
            self.warned = self.ood_warning()
            print(f"WARNING: {self.warned}" if self.warned else "input back within the training data's range",
                  flush=True)


def _stop_on_signals(stop) -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop())


def build_parser() -> argparse.ArgumentParser:
    from bci_stream.live import LiveConfig
    from bci_stream.wait import WAIT_MODES, WaitConfig

    parser = argparse.ArgumentParser(prog="bci-stream", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress; print tracebacks of errors")
    parser.add_argument("--local", action="store_true",
                        help="keep LSL discovery on this machine, in an LSL session of this run's own (printed; "
                             "another terminal joins it with --lsl-session)")
    parser.add_argument("--lsl-session", default=None, metavar="NAME",
                        help="with --local: use this LSL session id, so several bci-stream commands see each other")
    sub = parser.add_subparsers(dest="command", required=True)

    from bci_stream.phantom import LIVE_SESSION

    p = sub.add_parser("simulate", help="stream the phantom headset over LSL (EEG + markers)")
    p.add_argument("--channels", type=positive_int, default=128)
    p.add_argument("--sfreq", type=positive_float, default=1000.0)
    p.add_argument("--classes", type=int_range(1, N_PHANTOM_CLASSES), default=40)
    p.add_argument("--isi", type=positive_float, default=0.5, help="seconds between stimuli")
    p.add_argument("--seed", type=non_negative_int, default=0, help="the headset (templates, subjects)")
    p.add_argument("--subject", type=int_range(1, N_PHANTOM_SUBJECTS), default=1)
    p.add_argument("--session", type=non_negative_int, default=LIVE_SESSION,
                   help=f"recording session: its stimulus order and noise (default {LIVE_SESSION}, new to any model "
                        "trained on the phantom; 0 is the training data)")
    p.add_argument("--duration", type=positive_float, default=None, help="seconds to stream (default: until Ctrl-C)")
    p.add_argument("--name", default="bci-stream-phantom")
    p.add_argument("--source-id", default=None)
    p.add_argument("--chunk", type=positive_float, default=0.01, help="seconds per pushed chunk")
    p.add_argument("--counter", action="store_true", help="append a SAMPLE_INDEX channel")
    p.add_argument("--blocks", action="store_true", help="block design (50 images of a class in a row)")
    p.add_argument("--verbose-stream", action="store_true", help="print a line per second streamed")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("replay", help="stream a recorded file (XDF, FIF, EDF, BDF, BrainVision, EEG-ImageNet .pth)")
    p.add_argument("file")
    p.add_argument("--name", default=None, help="LSL stream name (default: the file name)")
    p.add_argument("--source-id", default=None)
    p.add_argument("--loop", action="store_true")
    p.add_argument("--speed", type=positive_float, default=1.0)
    p.add_argument("--duration", type=positive_float, default=None)
    p.add_argument("--chunk", type=positive_float, default=0.01)
    p.add_argument("--counter", action="store_true")
    p.add_argument("--subject", type=positive_int, default=None, help="EEG-ImageNet: one subject's trials")
    p.add_argument("--wait-for-consumer", type=positive_float, default=None, metavar="SECONDS",
                   help="start streaming only once a consumer has connected (or after SECONDS): no marker is "
                        "missed by a decoder that starts after the replay")
    p.add_argument("--event-field", default=None, metavar="FIELD",
                   help="EEGLAB .set: markers '<type>/<FIELD value>' from the file's event table (e.g. position)")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("live", help="decode an LSL EEG stream in real time")
    p.add_argument("--model", required=True, help="ONNX model with a bci-stream model card")
    p.add_argument("--stream", default=None, help="EEG stream name (default: first stream of type EEG)")
    p.add_argument("--markers", default=None, help="marker stream name (event mode default: first 'Markers' stream)")
    p.add_argument("--mode", choices=["continuous", "event"], default="continuous")
    p.add_argument("--hop", type=positive_float, default=None, help="seconds between decisions (default: the card's)")
    p.add_argument("--smoothing", type=positive_int, default=1, help="decisions averaged (continuous mode)")
    p.add_argument("--wait", choices=WAIT_MODES, default=WaitConfig.mode,
                   help="how the loop waits for data: block in liblsl; poll (sleep until 1 ms before the chunk "
                        "is due, then poll); prewarm (poll, and run the network once first); spin (a whole core)")
    p.add_argument("--headless", action="store_true", help="no window: print decisions")
    p.add_argument("--print-every", type=positive_int, default=10, help="headless continuous mode: print every N-th decision")
    p.add_argument("--seconds", type=positive_float, default=None, help="stop after this long")
    p.add_argument("--log", default=None, help="JSONL session log")
    p.add_argument("--providers", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--resolve-timeout", type=wait_seconds, default=LiveConfig.resolve_timeout,
                   help="seconds to wait for the stream at start (-1: until it appears; Ctrl-C stops the wait)")
    p.add_argument("--stimuli", default=None, metavar="PATTERNS",
                   help="event mode: comma-separated patterns of the markers that are stimuli (e.g. 'square/*'); "
                        "other markers (responses) are shown, not decoded (default: every marker)")
    p.add_argument("--assume-unit", default=None, metavar="UNIT",
                   help="the unit of the stream's samples (V, mV, uV, nV, a.u.) when it declares none or a wrong one")
    p.add_argument("--outlet-name", default=LiveConfig.outlet_name,
                   help="name of the predictions LSL outlet (its source id adds host, input stream and model hash)")
    p.add_argument("--renderer", choices=["none", "gallery", "diffusion"], default="gallery")
    p.add_argument("--gallery", default=None, help="folder of exemplar images per class (<synset or name>/*.jpg)")
    p.add_argument("--diffusion-model", default="stabilityai/sd-turbo", help="diffusers folder or hub id (cached)")
    p.add_argument("--steps", type=positive_int, default=1, help="diffusion denoising steps")
    p.add_argument("--image-size", type=positive_int, default=512, help="rendered picture side, pixels")
    p.add_argument("--taesd", default=None, help="folder of a TAESD tiny autoencoder (e.g. madebyollin/taesd): faster decoding")
    p.add_argument("--img2img", type=float_range(0, 1), default=0.0, metavar="STRENGTH",
                   help="start each picture from the previous one (0 < STRENGTH <= 1): smoother live output")
    p.add_argument("--compile-renderer", action="store_true",
                   help="torch.compile the UNet with CUDA graphs (CUDA; about a minute before the first picture)")
    p.add_argument("--renderer-in-process", action="store_true",
                   help="render on a thread of this process instead of a child process (debugging)")
    p.add_argument("--screenshot", default=None, help="viewer: save a PNG shortly before --seconds end")
    p.set_defaults(func=cmd_live)

    p = sub.add_parser("info", help="print a model's card")
    p.add_argument("model")
    p.set_defaults(func=cmd_info)
    return parser


def _keep_lsl_local(session: str | None) -> None:
    """``--local``: loopback discovery in a session of this run's own, or ``session``; a process
    started by another bci-stream command (``LSLAPICFG`` already set) stays in that one's session."""
    from bci_stream.lsl_config import session_of, use_loopback

    inherited = os.environ.get("LSLAPICFG")
    if session is None and inherited and session_of(inherited):
        return
    path = use_loopback(session=session)
    if session is None:
        print(f"LSL: this machine only, session {session_of(path)!r} (other commands join it with "
              f"`--local --lsl-session {session_of(path)}`)", file=sys.stderr, flush=True)


EXIT_USAGE = 2  # a user error: bad file, model, stream or option (argparse uses 2 too)
EXIT_INTERNAL = 1  # an error bci-stream did not expect (a bug, or a file odd in a way nobody foresaw)
EXIT_LOG_FAILED = 3  # decoding ran but the JSONL log could not be written in full


def error_line(err: BaseException, limit: int = 400) -> str:
    """One line for a user: the error's own message (ours name the problem and the next step); the
    type only where the message alone says too little (``KeyError: 'x'``, a bare ``TypeError``)."""
    if isinstance(err, MemoryError):
        return "out of memory" + (f" ({err})" if str(err) else "") + ": free memory, or use a smaller model or window"
    if isinstance(err, OSError) and err.strerror:  # e.g. "Is a directory: runs/" for --log runs/
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    text = " ".join(str(err).split())
    if not isinstance(err, (ValueError, RuntimeError, OSError)) or not text:
        text = f"{type(err).__name__}: {text}".rstrip(": ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    """The ``bci-stream`` command. Errors never reach the user as a traceback (``-v`` prints it):
    user errors exit 2, unexpected ones 1, a JSONL log that could not be written 3."""
    set_offline_environment()  # before anything imports huggingface_hub: no network at run time
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.local or args.lsl_session:
            _keep_lsl_local(args.lsl_session)
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, RuntimeError, OSError, MemoryError) as err:
        # user errors: bad files, models, streams, paths (IsADirectoryError for --log DIR), a full disk
        _report(args, err, hint=False)
        return EXIT_USAGE
    except Exception as err:  # noqa: BLE001 - anything else still gets one line, and -v its traceback
        _report(args, err, hint=True)
        return EXIT_INTERNAL


def _report(args, err: BaseException, hint: bool) -> None:
    if args.verbose:
        traceback.print_exception(err)
    more = "" if args.verbose or not hint else " (run `bci-stream -v ...` for the traceback)"
    print(f"bci-stream {args.command}: error: {error_line(err)}{more}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
