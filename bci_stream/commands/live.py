"""``bci-stream live``: decode an LSL EEG stream in real time (viewer, or printed decisions)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bci_stream.commands._common import EXIT_LOG_FAILED, HelpFormatter, stop_on_signals
from bci_stream.commands._types import float_range, positive_float, positive_int, wait_seconds
from bci_stream.contract.adaptation import MODES as ADAPT_MODES
from bci_stream.contract.adaptation import AdaptConfig
from bci_stream.live.scoring import accuracy_text
from bci_stream.resources import has_display, model_path

if TYPE_CHECKING:
    from bci_stream.live.config import LiveConfig

EPILOG = """examples:
  bci-stream live --model my_model.onnx --stream "actiCHamp-12345" --log session.jsonl
  bci-stream live --model my_model.onnx --mode event --markers PsychoPyMarkers --stimuli 'stim_*' --headless
  bci-stream --local live --model demo --headless --seconds 20   # beside `simulate`
  bci-stream live --model embedding.onnx --gallery-index idx.safetensors --top-k 5   # retrieval (embedding models)
  bci-stream live --model p300.onnx --mode event --accumulate --stop-confidence 0.95 --max-repeats 10
  bci-stream live --model faces.onnx --mode event --events-from Marker0 --event-codes '1:house;2:face'
  bci-stream live --model my_model.onnx --adapt recentre --adapt-windows 60   # a new day: re-centred, no labels
"""


def add_parser(sub, parents) -> None:
    from bci_stream.live.config import LiveConfig
    from bci_stream.live.wait import WAIT_MODES
    from bci_stream.render.base import RENDER_KINDS, UNCLIP_MODEL, RenderConfig

    live, render = LiveConfig(), RenderConfig()
    acc, events, adapt = live.accumulate, live.events, live.adapt
    p = sub.add_parser("live", help="decode an LSL EEG stream in real time", parents=parents,
                       formatter_class=HelpFormatter, epilog=EPILOG,
                       description="Decode an LSL EEG stream with an exported model: the stream is checked against "
                                   "the model card (channels, rate, unit) and preprocessed as the training data were; "
                                   "predictions go to an LSL outlet, the JSONL log and the viewer.")
    p.add_argument("--model", required=True, type=model_path,
                   help="ONNX model with a bci-stream model card ('demo': the shipped demo model)")
    p.add_argument("--gallery-index", default=None, metavar="IDX",
                   help="embedding models: the gallery index their decisions are retrieved from (`bci-stream index`), "
                        "in the model's embedding space")
    p.add_argument("--top-k", type=positive_int, default=live.top_k,
                   help="embedding models: nearest gallery images per decision (LSL, JSONL, viewer)")
    p.add_argument("--publish-embedding", action="store_true",
                   help="embedding models: also publish the decoded embedding (emb_* channels, JSONL 'embedding')")
    p.add_argument("--stream", default=live.stream,
                   help="EEG stream name (default: the first stream of type EEG that fits the model)")
    p.add_argument("--markers", default=live.markers,
                   help="marker stream name (default: '<stream>-markers', else the only one on the EEG's host)")
    p.add_argument("--mode", choices=["continuous", "event"], default=live.mode,
                   help="continuous: a decision every hop; event: one per stimulus marker, scored against it")
    p.add_argument("--hop", type=positive_float, default=live.hop, help="seconds between decisions (default: the card's)")
    p.add_argument("--smoothing", type=positive_int, default=live.smoothing, help="decisions averaged (continuous mode)")
    p.add_argument("--wait", choices=WAIT_MODES, default=live.wait.mode,
                   help="how the loop waits for data: block in liblsl; poll (sleep until 1 ms before the chunk "
                        "is due, then poll); prewarm (poll, and run the network once first); spin (a whole core)")
    p.add_argument("--headless", action="store_true", help="no window: print decisions")
    p.add_argument("--print-every", type=positive_int, default=10, help="headless continuous mode: print every N-th decision")
    p.add_argument("--seconds", type=positive_float, default=None, help="stop after this long (default: until Ctrl-C)")
    p.add_argument("--log", default=None, help="JSONL session log (one line per decision and event)")
    p.add_argument("--record", default=None, metavar="DIR",
                   help="record the EEG, marker and predictions streams into a new XDF file in DIR with LabRecorder "
                        "(clock offsets included; reads back with pyxdf, trains with bci-train --data xdf:FILE)")
    p.add_argument("--watch-model", default=None, metavar="ONNX",
                   help="swap in this model file whenever it changes (same channels, rate, unit, preprocessing, "
                        "window and classes; else refused and the running model stays)")
    p.add_argument("--providers", choices=["auto", "cpu", "cuda"], default=live.providers,
                   help="ONNX Runtime execution provider (auto: CUDA when a GPU works)")
    p.add_argument("--resolve-timeout", type=wait_seconds, default=live.resolve_timeout,
                   help="seconds to wait for the stream at start (-1: until it appears; Ctrl-C stops the wait)")
    p.add_argument("--stimuli", default=None, metavar="PATTERNS",
                   help="event mode: comma-separated patterns of the markers that are stimuli (e.g. 'square/*'); "
                        "other markers (responses) are shown, not decoded (default: every marker)")
    g = p.add_argument_group("evidence accumulation (event mode; off by default)")
    g.add_argument("--accumulate", nargs="?", const="marker", default="marker" if acc.enabled else None,
                   choices=["marker", "sequence"],
                   help="combine the decisions of repeated stimuli by summed log-probabilities: 'marker' (the same "
                        "marker text) or 'sequence' (every stimulus until a reset marker)")
    g.add_argument("--stop-confidence", type=float_range(0, 1), default=acc.stop_confidence, metavar="P",
                   help="a decision is final once its top probability reaches P (then it starts again)")
    g.add_argument("--max-repeats", type=positive_int, default=acc.max_repeats, metavar="N",
                   help="... or once N repeats are combined")
    g.add_argument("--reset-markers", default=None, metavar="PATTERNS",
                   help="comma-separated patterns of markers that start every accumulation again (a new target)")
    g.add_argument("--accumulate-timeout", type=positive_float, default=acc.timeout, metavar="S",
                   help="a stimulus not repeated for S seconds starts again")
    g.add_argument("--accumulate-prior", default=None, metavar="P,P,...",
                   help="the class prior the model's probabilities carry (divided out of all but one repeat; "
                        "default flat)")
    g = p.add_argument_group("session adaptation (label-free; off by default: it changes decisions)")
    g.add_argument("--adapt", choices=list(ADAPT_MODES), default=adapt.mode,
                   help="recentre: re-centre the features on this session's own statistics (per channel and row), "
                        "estimated without labels from its first --adapt-windows decisions, which themselves use "
                        "the training statistics; assumes those decisions hold the classes in their usual "
                        "proportions")
    g.add_argument("--adapt-windows", type=adapt_windows, default=adapt.windows, metavar="N",
                   help="decisions (in event mode: stimuli) whose features re-centre the session (at least 2)")
    g = p.add_argument_group("events from a channel of the EEG stream")
    g.add_argument("--events-from", default=events.channel, metavar="CHANNEL",
                   help="take the stimulus events from this channel of the EEG stream (sample-exact; an LSL marker "
                        "stream, if there is one, is only timed against it); the model must not decode the channel")
    g.add_argument("--events-kind", choices=["trigger", "photodiode"], default=events.kind,
                   help="trigger: a new non-zero code is an event; photodiode: a rising crossing of --events-threshold")
    g.add_argument("--events-threshold", type=float, default=events.threshold, metavar="LEVEL",
                   help="photodiode: the edge level in the channel's raw unit")
    g.add_argument("--events-holdoff", type=float, default=events.holdoff, metavar="S",
                   help="seconds after an event in which no other is taken (default: 0 trigger, 0.05 photodiode)")
    g.add_argument("--event-codes", default=None, metavar="CODE:NAME;...",
                   help="trigger codes named as markers, e.g. '1:house;2:face' (default: the code itself)")
    p.add_argument("--assume-unit", default=live.assume_unit, metavar="UNIT",
                   help="the unit of the stream's samples (V, mV, uV, nV, a.u.) when it declares none or a wrong one")
    p.add_argument("--bad-channels", choices=["off", "withhold", "repair"], default=live.bad_channels.mode,
                   help="flat / noisy / dropped-out channels (checked every 0.25 s, bad until clean for 2 s): off "
                        "(default), withhold the window, or repair: interpolate them from their neighbours (MNE "
                        "spherical splines; needs 10-05 channel names and MNE), withholding beyond --max-bad-channels")
    p.add_argument("--max-bad-channels", type=int, default=live.bad_channels.max_bad, metavar="N",
                   help="repair: most channels interpolated at once (default: a quarter of the channels)")
    p.add_argument("--outlet-name", default=live.outlet_name,
                   help="name of the predictions LSL outlet (its source id adds host, input stream and model hash)")
    p.add_argument("--renderer", choices=RENDER_KINDS, default=render.kind,
                   help="pictures of the decision (embedding-diffusion: an embedding model's decoded embedding "
                        "through an unCLIP pipeline in the card's embedding space; else the top-1 retrieved image)")
    p.add_argument("--gallery", default=render.gallery_dir,
                   help="folder of exemplar images per class (<synset or name>/*.jpg; default: a drawn card)")
    p.add_argument("--diffusion-model", default=None,
                   help="diffusers folder or hub id (must be in the local cache: no network at run time); when not "
                        f"given: {render.diffusion_model}, or {UNCLIP_MODEL} for embedding-diffusion")
    p.add_argument("--embedding-space", default=render.embedding_space, metavar="SPACE",
                   help="embedding-diffusion: the space of the pipeline's image encoder, e.g. "
                        "open_clip:ViT-H-14/laion2b_s32b_b79k; when not given: derived from the pipeline")
    p.add_argument("--steps", type=positive_int, default=None,
                   help=f"diffusion denoising steps; when not given: {render.steps}, or {render.embedding_steps} for "
                        "embedding-diffusion")
    p.add_argument("--image-size", type=positive_int, default=render.size, help="rendered picture side, pixels")
    p.add_argument("--taesd", default=render.taesd,
                   help="folder of a TAESD tiny autoencoder (e.g. madebyollin/taesd): faster decoding")
    p.add_argument("--img2img", type=float_range(0, 1), default=render.img2img_strength, metavar="STRENGTH",
                   help="start each picture from the previous one (0 < STRENGTH <= 1): smoother live output")
    p.add_argument("--compile-renderer", action="store_true",
                   help="torch.compile the UNet with CUDA graphs (CUDA; about a minute before the first picture)")
    p.add_argument("--renderer-in-process", action="store_true",
                   help="render on a thread of this process instead of a child process (debugging)")
    p.add_argument("--screenshot", default=None, help="viewer: save a PNG shortly before --seconds end")
    p.set_defaults(func=run)


def render_config(args):
    """The renderer settings named by ``--renderer`` and its options, or None for ``none``."""
    if args.renderer == "none":
        return None
    from bci_stream.render import RenderConfig
    from bci_stream.render.base import UNCLIP_MODEL

    default = RenderConfig()
    unclip = args.renderer == "embedding-diffusion"
    return RenderConfig(kind=args.renderer, gallery_dir=args.gallery,
                        diffusion_model=args.diffusion_model or (UNCLIP_MODEL if unclip else default.diffusion_model),
                        steps=args.steps or default.steps, embedding_steps=args.steps or default.embedding_steps,
                        embedding_space=args.embedding_space, size=args.image_size, taesd=args.taesd,
                        img2img_strength=args.img2img, compile=args.compile_renderer,
                        in_process=args.renderer_in_process)


def adapt_windows(text: str) -> int:
    """``--adapt-windows``: an integer the adaptation accepts (:class:`AdaptConfig`'s own rule)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None
    try:
        AdaptConfig(windows=value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{err}; e.g. --adapt-windows {AdaptConfig().windows}") from None
    return value


def live_config(args) -> LiveConfig:
    """The :class:`LiveConfig` the parsed ``bci-stream live`` options name."""
    from bci_stream.contract.artifacts import RepairConfig
    from bci_stream.live.accumulate import AccumulateConfig
    from bci_stream.live.channel_events import ChannelEventsConfig, parse_codes
    from bci_stream.live.config import LiveConfig
    from bci_stream.live.wait import WaitConfig

    return LiveConfig(stream=args.stream, markers=args.markers, mode=args.mode, hop=args.hop,
                      smoothing=args.smoothing, log_path=Path(args.log) if args.log else None,
                      resolve_timeout=args.resolve_timeout, outlet_name=args.outlet_name,
                      assume_unit=args.assume_unit, wait=WaitConfig(args.wait), top_k=args.top_k,
                      publish_embedding=args.publish_embedding,
                      record_dir=Path(args.record) if args.record else None,
                      watch_model=Path(args.watch_model) if args.watch_model else None,
                      bad_channels=RepairConfig(mode=args.bad_channels, max_bad=args.max_bad_channels),
                      stimuli=tuple(p.strip() for p in args.stimuli.split(",") if p.strip()) if args.stimuli else None,
                      accumulate=AccumulateConfig(
                          enabled=args.accumulate is not None, group=args.accumulate or "marker",
                          stop_confidence=args.stop_confidence, max_repeats=args.max_repeats,
                          reset_markers=_patterns(args.reset_markers), timeout=args.accumulate_timeout,
                          prior=tuple(float(v) for v in args.accumulate_prior.split(",")) if args.accumulate_prior
                          else None),
                      events=ChannelEventsConfig(channel=args.events_from, kind=args.events_kind,
                                                 threshold=args.events_threshold, holdoff=args.events_holdoff,
                                                 codes=parse_codes(args.event_codes)),
                      adapt=AdaptConfig(mode=args.adapt, windows=args.adapt_windows))


def run(args) -> int:
    from bci_stream.live.session import LiveSpec

    if not args.headless and not (has_display() or os.environ.get("QT_QPA_PLATFORM") == "offscreen"):
        raise RuntimeError("no display for the viewer: add --headless (or run under xvfb-run)")
    config = live_config(args)
    spec = LiveSpec(model=args.model, providers=args.providers, smoothing=args.smoothing, live=config,
                    render=render_config(args), seconds=args.seconds, gallery_index=args.gallery_index)
    if args.headless:
        summary = _live_headless(spec, args.print_every)
    else:  # the viewer here, decoding in a child process (Qt's painting would hold up its GIL)
        from bci_stream.viewer.app import run_viewer_with_decoding_process

        print(f"decoding with {args.model} in a child process; the viewer shows it", flush=True)
        summary = run_viewer_with_decoding_process(spec, screenshot=args.screenshot)
        if summary is None:
            print("the decoding process ended without a summary (its error is printed above)", file=sys.stderr)
            return 1
    if summary.get("stopped_waiting"):  # Ctrl-C before the stream was found: nothing was decoded
        print(f"stopped while waiting for {summary['stopped_waiting']}: no decisions", flush=True)
        return 130
    print(summary_line(summary) + (f"\nWARNING at the end: {summary['ood_warning']}" if summary["ood_warning"] else ""))
    accuracy = summary.get("event_accuracy") or {}
    if accuracy.get("n"):
        print(f"event mode: {accuracy['n']} stimuli scored, {accuracy_text(accuracy)} "
              "(95 % CIs; p: one-sided binomial vs chance)")
    line = extras_line(summary)
    if line:
        print(line)
    if summary.get("log_error"):  # decoding went on, but the record of it is incomplete
        print(f"bci-stream live: error: {summary['log_error']}", file=sys.stderr)
        return EXIT_LOG_FAILED
    if summary.get("recording_error"):  # the same policy for the XDF recording
        print(f"bci-stream live: error: {summary['recording_error']}", file=sys.stderr)
        return EXIT_LOG_FAILED
    return 0


def _patterns(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip()) if text else ()


def extras_line(summary: dict) -> str:
    """The accumulation's, the events channel's and the session adaptation's closing figures ("" when
    none was on)."""
    out = []
    acc = summary.get("accumulation") or {}
    if acc:
        mean = acc.get("mean_repeats_final")
        out.append(f"accumulation: {acc['decisions']} accumulated decisions, {acc['final_decisions']} final"
                   + (f" after {mean:.2f} repeats on average" if mean is not None else "")
                   + f", {acc['resets']} resets (accuracy above is of the accumulated decisions)")
    ch = summary.get("channel_events") or {}
    if ch:
        off = ch["offset_vs_lsl_markers"]
        timing = (f"offset vs LSL markers median {off['median_ms']:+.3f} ms, p95 |offset| {off['p95_abs_ms']:.3f} ms "
                  f"over {off['pairs']} pairs" if off.get("pairs") else "no LSL marker paired")
        out.append(f"events from channel {ch['channel']!r} ({ch['kind']}): {ch['events']} events; {timing}")
    ad = summary.get("adaptation") or {}
    if ad:
        out.append(f"session adaptation ({ad['mode']}): re-centred on the first {ad['windows']} decisions "
                   f"(centre shift {ad['shift_z']:.2f} z, spread ratio {ad['spread_ratio']:.2f})")
    return "\n".join(out)


def summary_line(summary: dict) -> str:
    """The closing line of a session (:meth:`SharedState.summary`); latency only when there were
    decisions (there is no percentile of nothing)."""
    n = summary["n_decisions"]
    latency = (f"latency p50 {summary['p50']:.2f} ms p99 {summary['p99']:.2f} ms" if n
               else "no decisions, so no latency")
    return (f"{n} decisions, {summary['n_withheld']} withheld, {latency}, lost samples {summary['lost_samples']}, "
            f"gaps {summary['gaps']} ({summary['seconds_down']:.2f} s), markers {summary['marker_status']}")


def stream_wanted(stream: str | None) -> str:
    """How the stream looked for is named to a user: ``stream 'X'`` or ``a stream of type EEG``."""
    return f"stream {stream!r}" if stream else "a stream of type EEG"


def waiting_printer(wanted: str):
    """``LSLSource.on_wait``: one line when the wait begins to take a while, then its progress."""
    def report(seconds: float) -> None:
        if seconds < PROGRESS_FIRST + PROGRESS_EVERY / 2:
            print(f"waiting for {wanted} (Ctrl-C to stop)", flush=True)
        else:
            print(f"  still waiting for {wanted} ({seconds:.0f} s)", flush=True)

    from bci_stream.lsl.inlet import PROGRESS_EVERY, PROGRESS_FIRST

    return report


def _live_headless(spec, print_every: int) -> dict:
    from bci_stream.live.extras import SessionExtras
    from bci_stream.live.session import build_session

    printer = HeadlessPrinter([], every=print_every)
    session = build_session(spec, listeners=[printer])
    decoder = session.decoder
    printer.class_names, printer.ood_warning = list(session.class_names), lambda: decoder.ood.warning
    printer.accuracy = session.accuracy
    stop_on_signals(session.stop)  # also ends a wait for the stream
    wanted = stream_wanted(spec.live.stream)
    session.source.on_wait = waiting_printer(wanted)
    try:
        try:
            session.start()
        except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) during the wait: a clean stop, not an error
            session.close()  # nothing was logged: the log file it created goes too
            return {**session.state.summary(), "stopped_waiting": wanted}
        r = session.retriever
        output = (f"{decoder.card.n_classes} classes" if r is None else
                  f"{decoder.card.n_outputs}-d embedding -> top-{r.k} of {r.gallery.size} images, {r.n_classes} classes")
        print(f"decoding with {spec.model} on {decoder.provider} ({spec.live.mode}, {output}, "
              f"window {decoder.card.window_length:g} s, hop {session.hop / decoder.card.sfreq * 1000:g} ms)", flush=True)
        print(describe_session(session.describe()), flush=True)
        extras = SessionExtras.start(session, spec.providers)
        if extras.recorder is not None:
            print(f"  recording: {extras.recorder.path} (LabRecorder; log {extras.recorder.log_path})", flush=True)
        try:
            session.run(seconds=spec.seconds)
        finally:
            line = extras.stop()
            if line:
                print(line, flush=True)
    finally:
        if not session.closed:  # start() failed: run() did not close it
            session.close()
    summary = session.state.summary()
    summary["recording_error"] = (session.state.recording or {}).get("error", "")
    return summary


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
    if d.get("gallery"):
        g = d["gallery"]
        lines.append(f"  gallery: {g['path']} ({g['images']} images, {g['classes']} classes, space {g['space']}, "
                     f"sha256 {g['sha256'][:12]}…)")
    if d["outlet"]:
        topk = f" + {d['outlet']['name'] + '-topk'!r} (top-k ids as JSON)" if d.get("gallery") else ""
        lines.append(f"  predictions: LSL {d['outlet']['name']!r} (source_id {d['outlet']['source_id']!r}){topk}")
    return "\n".join(lines)


class HeadlessPrinter:
    """Prints one line per decision (every ``every``-th in continuous mode); in event mode the
    stimulus shown, the class decoded, hit or miss, and the running accuracy with its CI."""

    def __init__(self, class_names: list[str], every: int = 1, ood_warning=lambda: "", accuracy=None):
        self.class_names, self.every, self.n = class_names, max(1, every), 0
        self.ood_warning, self.warned = ood_warning, ""
        self.accuracy = accuracy  # a RunningAccuracy (event mode)
        self.adapt_state = "off"  # the last decision's (a change is printed)

    def __call__(self, p) -> None:
        self.n += 1
        if p.adapt_state != self.adapt_state:
            self.adapt_state = p.adapt_state
            print(f"session adaptation: {p.adapt_state} ({p.adapt_windows} decisions gathered)", flush=True)
        if p.marker is None and self.n % self.every:
            return
        top = p.top5[0]
        ood = f"  input z {p.ood_bias:+.1f}/{p.ood_rms:.1f}" if p.ood_rms == p.ood_rms else ""
        if p.marker is not None and p.truth is not None:
            mark = "HIT " if p.hit else "miss"
            line = (f"#{self.n:5d} shown {self.class_names[p.truth]:>18s} -> decoded {self.class_names[top]:>18s} "
                    f"{p.probabilities[top]:.2f} {mark}  latency {p.latency_ms:5.2f} ms")
            if self.accuracy is not None:
                line += f"  | {self.accuracy.line()}"
        else:
            marker = f"  marker {p.marker}" if p.marker else ""
            line = (f"#{self.n:6d} sample {p.window_end_sample:9d}  {self.class_names[top]:>20s} "
                    f"{p.probabilities[top]:.2f}  latency {p.latency_ms:6.2f} ms{ood}{marker}")
        if "repeats" in p.extra:  # accumulation on: the decision above combines this many repeats
            line += f"  [{p.extra['repeats']} repeat(s){', final' if p.extra.get('final') else ''}]"
        if p.retrieval is not None:
            r = p.retrieval
            line += "  | nearest: " + ", ".join(f"{i} ({lab}) {s:.2f}" for i, lab, s in
                                               zip(r.ids[:3], r.labels[:3], r.similarities[:3]))
        print(line, flush=True)
        if self.warned != self.ood_warning():
            self.warned = self.ood_warning()
            print(f"WARNING: {self.warned}" if self.warned else "input back within the training data's range",
                  flush=True)
