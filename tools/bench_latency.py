#!/usr/bin/env python
"""Decision latency of the live decoder against a do-it-yourself baseline, on one phantom stream.

Starts the phantom headset in a separate process (128 ch x 1 kHz by default, with a SAMPLE_INDEX
channel), then decodes it for --seconds with bci-stream (pylsl pull into a preallocated buffer,
shared spectrogram, ONNX Runtime), and for --seconds with the baseline most labs would write first
(mne-lsl StreamLSL.get_data every hop + scipy.signal.stft + the same CNN in torch eager mode).
Latency = LSL time the probabilities are published minus the LSL time stamp of the window's last
sample. Prints p50/p95/p99/max, lost samples, drift (first vs last minute, or first vs last tenth
of shorter runs), CPU % of the decoding process, and the baseline ratio.

bci-stream runs once per wait mode (``--waits``: block, poll, prewarm, spin; see bci_stream/live/wait.py),
each with CPU % beside its latency; ``--full-features`` adds a run computing every window's
spectrogram in full (no incremental frames); ``--old DIR`` adds a run of another checkout's
decoder (e.g. the commit before this work) on the same phantom stream, in a child process with
that checkout's code, so before and after are measured in one run.

``--model-b EMB.onnx --gallery-index IDX`` adds a run of an embedding model (its decision: retrieval of
the top-k gallery images, :mod:`bci_stream.retrieval.retriever`) on the same stream right after the first wait
mode's run, and prints its p99 over the classifier's (issue 14's budget: x1.5). Build a same-network
twin of the demo classifier with ``tools/build_embedding_model.py --kind twin``.

``--variants event,accumulate,repair,adapt`` adds runs with those live features on (issue 26's budget:
each costs the decision path at most 0.3 ms p99 over the run it changes: accumulate over event, repair
and adapt over the first wait mode).

``--breakdown`` times each decision's stages (:class:`StageClock`): where the latency goes.

    python tools/bench_latency.py --seconds 600 --json latency.json
    python tools/bench_latency.py --seconds 60 --no-baseline --model-b twin.onnx --gallery-index gallery.safetensors
    python tools/bench_latency.py --seconds 60 --waits block,poll,prewarm,spin --full-features --old /work/old
    python tools/bench_latency.py --seconds 60 --no-baseline --waits block --variants event,accumulate,repair,adapt
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bci_stream.lsl.config import use_loopback  # noqa: E402
from bci_stream.resources import DEMO_MODEL  # noqa: E402

use_loopback()

import pylsl  # noqa: E402


def summarise(latencies: list[float], seconds: float) -> dict:
    lat = np.asarray(latencies)
    if lat.size == 0:
        return {"n": 0}
    tenth = max(1, len(lat) // 10)
    per_minute = int(60 / seconds * len(lat)) if seconds > 120 else tenth
    head, tail = lat[:per_minute], lat[-per_minute:]
    return {"n": int(lat.size), "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()),
            "drift_ms": float(np.median(tail) - np.median(head)),
            "drift_window": "first vs last minute" if seconds > 120 else "first vs last tenth"}


STAGES = ("LSL transport + wake-up", "preprocessing, ring buffer, loop", "features (+ normalisation, OOD)",
          "ONNX Runtime", "decision to outlet (top-5, Prediction, push)")


class StageClock:
    """Where each decision's latency goes: the live session's pieces wrapped on the instance (this tool
    only; the live code has no timers). Per decision, on the LSL clock: the stamp of the window's last
    sample, the return of the pull that brought it, the start of ``Decoder.classify``, the start and end
    of the ONNX Runtime call, and the time the decision was stamped for the outlet. ``stages()`` gives
    the five differences (:data:`STAGES`, ms; they add up to the latency)."""

    def __init__(self, session) -> None:
        from bci_stream.live.sinks import CallbackSink

        clock = pylsl.local_clock
        self.rows: list[tuple[float, ...]] = []
        self._t = {"pull": np.nan, "classify": np.nan, "ort0": np.nan, "ort1": np.nan}
        t = self._t

        def timed(fn, before: str | None = None, after: str | None = None, only_if_data: bool = False):
            def wrapper(*args, **kwargs):
                if before:
                    t[before] = clock()
                out = fn(*args, **kwargs)
                if after and (not only_if_data or len(out[1])):
                    t[after] = clock()
                return out
            return wrapper

        session.waiter.pull = timed(session.waiter.pull, after="pull", only_if_data=True)
        session.decoder.classify = timed(session.decoder.classify, before="classify")
        ort = session.decoder.session
        ort.run_with_iobinding = timed(ort.run_with_iobinding, before="ort0", after="ort1")
        ort.run = timed(ort.run, before="ort0", after="ort1")
        session.sinks.append(CallbackSink(self._decided))

    def _decided(self, p) -> None:
        t = self._t
        self.rows.append((p.t_lsl, t["pull"], t["classify"], t["ort0"], t["ort1"], p.t_emitted))

    def stages(self) -> dict:
        """Median and p99 (ms) of each stage over the decisions (:data:`STAGES`)."""
        rows = np.asarray(self.rows)
        if len(rows) == 0:
            return {}
        parts = np.diff(rows, axis=1) * 1e3  # (n_decisions, 5)
        return {name: {"p50_ms": float(np.nanpercentile(parts[:, i], 50)),
                       "p99_ms": float(np.nanpercentile(parts[:, i], 99))} for i, name in enumerate(STAGES)}


def variant_names(text: str) -> list[str]:
    """``--variants`` as a list of names (empty entries dropped)."""
    return [v.strip() for v in text.split(",") if v.strip()]


def variant_config(variant: str, stream: str) -> dict:
    """The :class:`LiveConfig` entries of a ``--variants`` run: ``event`` (event mode on the phantom's
    markers), ``accumulate`` (event mode + evidence accumulation), ``repair`` (continuous, bad channels
    repaired by spherical splines: the detector runs every block), ``adapt`` (continuous, session
    re-centring that never finishes calibrating: its update runs on every decision, the worst case)."""
    from bci_stream.contract.adaptation import AdaptConfig
    from bci_stream.contract.artifacts import RepairConfig
    from bci_stream.live.accumulate import AccumulateConfig

    event = {"mode": "event", "markers": f"{stream}-markers"}
    table = {"event": event, "accumulate": {**event, "accumulate": AccumulateConfig(enabled=True)},
             "repair": {"bad_channels": RepairConfig(mode="repair")},
             "adapt": {"adapt": AdaptConfig(mode="recentre", windows=10**9)}}
    if variant not in table:
        sys.exit(f"--variants: unknown {variant!r}; choose from {', '.join(table)}")
    return table[variant]


def run_ours(model: Path, stream: str, seconds: float, hop: float, threads: int, wait: str = "block",
             incremental: bool = True, gallery_index: str | None = None, breakdown: bool = False,
             overrides: dict | None = None) -> dict:
    from bci_stream.live.decoder import Decoder
    from bci_stream.live.session import LiveConfig, LiveSession, open_retriever
    from bci_stream.live.wait import WaitConfig

    latencies: list[float] = []
    decoder = Decoder(model, providers="cpu", threads=threads, incremental=incremental)
    config = LiveConfig(stream=stream, hop=hop, outlet_name=f"bench-{uuid.uuid4().hex[:6]}", wait=WaitConfig(wait),
                        **(overrides or {}))
    retriever = open_retriever(gallery_index, decoder.card, config) if gallery_index else None
    session = LiveSession(decoder, config, listeners=[lambda p: latencies.append(p.latency_ms)], retriever=retriever)
    stage_clock = StageClock(session) if breakdown else None
    session.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    session.run(seconds=seconds)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0) * 100
    out = summarise(latencies, seconds)
    if retriever is not None:
        out.update(gallery_images=retriever.gallery.size, top_k=retriever.k)
    out.update(lost_samples=session.source.lost_samples, cpu_percent=cpu, provider=decoder.provider,
               withheld=session.state.n_withheld, gaps=len(session.state.gaps), wait=wait, incremental=incremental,
               skipped=session.state.n_skipped, late_polls=session.waiter.n_late)
    if stage_clock is not None:
        out["stages"] = stage_clock.stages()
    return out


def run_other_checkout(tree: Path, model: Path, stream: str, seconds: float, hop: float, threads: int) -> dict:
    """``run_ours`` of the checkout at ``tree`` (its own tools/bench_latency.py and bci_stream), in a
    child process reading the same phantom stream; its figures come back as JSON on stdout."""
    # its module sets up a loopback config of its own on import: keep it on ours (LSLAPICFG) instead
    # (bci_stream.lsl.config since the packages by role; bci_stream.lsl_config in checkouts before them);
    # one plain resolve first: the older checkout's continuous resolver, started cold in a process that
    # has made no LSL call yet, missed the phantom within its 10 s on this machine
    code = ("import importlib, importlib.util, json, sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/tools']; "
            "c = importlib.import_module('bci_stream.lsl.config' if importlib.util.find_spec('bci_stream.lsl') "
            "else 'bci_stream.lsl_config'); "
            "c.use_loopback = lambda *a, **k: None; import pylsl; pylsl.set_config_filename(sys.argv[7]); "
            "pylsl.resolve_byprop('name', sys.argv[3], 1, 10); "
            "import bench_latency as b; r = b.run_ours(__import__('pathlib').Path(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), "
            "int(sys.argv[6])); print('RESULT' + json.dumps(r))")
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run([sys.executable, "-c", code, str(tree), str(model.resolve()), stream, str(seconds), str(hop),
                           str(threads), os.environ["LSLAPICFG"]], cwd=tree, env=env, capture_output=True, text=True, timeout=seconds + 120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    if not lines:
        raise RuntimeError(f"the run of {tree} failed: {done.stderr.strip()[-2000:]}")
    return {**json.loads(lines[-1][len("RESULT"):]), "tree": str(tree)}


def diy_features(card, data: np.ndarray, signal) -> np.ndarray:
    """The card's features the way a lab would first write them with scipy (float32)."""
    if card.feature_kind == "erp":
        e = card.erp
        return signal.lfilter(e.taps(), 1.0, data, axis=-1)[:, None, e.numtaps - 1 :: e.decimate].astype(np.float32)
    s = card.spectrogram
    z = signal.stft(data, card.sfreq, nperseg=s.nperseg)[2][:, : s.n_bins()]
    if s.mode == "complex":
        return np.concatenate([z.real, z.imag], axis=1).astype(np.float32)
    return (np.log(np.abs(z) + s.log_eps) if s.mode == "log" else np.abs(z)).astype(np.float32)


def run_baseline(model: Path, stream: str, seconds: float, hop: float) -> dict:
    """mne-lsl StreamLSL + scipy.signal.stft + torch eager, polled every hop."""
    import scipy.signal
    import torch
    from mne_lsl.stream import StreamLSL

    from bci_stream.contract.model_card import ModelCard
    from offline_training.students import build_from_card_architecture

    card = ModelCard.from_onnx(model)
    net = build_from_card_architecture(card.architecture).eval()
    torch.set_num_threads(1)
    mean, std = card.norm_arrays()
    stream_obj = StreamLSL(bufsize=2, name=stream).connect(acquisition_delay=0.001, timeout=10)
    stream_obj.pick(card.ch_names)
    latencies = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    next_t = time.perf_counter()
    end = next_t + seconds
    time.sleep(card.window_length + 0.1)
    while time.perf_counter() < end:
        next_t += hop
        data, ts = stream_obj.get_data(winsize=card.window_length)
        if data.shape[1] == card.window_samples:
            x = torch.from_numpy(((diy_features(card, data, scipy.signal) - mean) / std)[None])
            with torch.no_grad():
                torch.softmax(net(x), 1).numpy()
            latencies.append((pylsl.local_clock() - ts[-1]) * 1e3)
        delay = next_t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0) * 100
    stream_obj.disconnect()
    return {**summarise(latencies, seconds), "cpu_percent": cpu}


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="per pipeline")
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--sfreq", type=float, default=1000.0)
    parser.add_argument("--hop", type=float, default=0.02)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--waits", default="block,poll",
                        help="comma-separated wait modes to run bci-stream with (block, poll, prewarm, spin)")
    parser.add_argument("--full-features", action="store_true",
                        help="also run with every window's spectrogram computed in full (wait block)")
    parser.add_argument("--old", default=None, help="also run another checkout's decoder (a worktree of the 'before' "
                                                    "commit) on the same stream")
    parser.add_argument("--old-model", default=None,
                        help="the model the --old checkout decodes (default: --model); an older checkout may not "
                             "read a newer card: give it its own demo model, e.g. OLD/models/demo/model.onnx, and "
                             "the same file as --reference-model for the same model on this checkout")
    parser.add_argument("--reference-model", help="also run bci-stream with this model (e.g. the previous demo "
                        "model) on the same stream and print the p99 ratio model / reference")
    parser.add_argument("--model-b", help="also run this embedding model (retrieval decisions) on the same stream and "
                        "print its p99 over the classifier's (needs --gallery-index)")
    parser.add_argument("--gallery-index", help="the --model-b embedding model's gallery index")
    parser.add_argument("--no-baseline", action="store_true", help="skip the do-it-yourself baseline")
    parser.add_argument("--breakdown", action="store_true",
                        help="time each decision's stages (transport + wake-up, loop, features, ONNX Runtime, "
                             "outlet) in every run of this checkout's decoder; adds about a microsecond per stage")
    parser.add_argument("--variants", default="",
                        help="also run these live features on the same stream, comma-separated: event, accumulate "
                             "(event mode + evidence accumulation: compare with event), repair (bad-channel repair) and "
                             "adapt (session re-centring, calibrating on every decision): compare with wait=block")
    parser.add_argument("--json", help="write the figures here")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    model = Path(args.model)
    card, waits = _checked(args, model)
    n_runs = len(waits) + len(variant_names(args.variants)) + int(args.full_features) + int(args.old is not None) \
        + int(not args.no_baseline) + int(bool(args.model_b))
    name = f"bench-{uuid.uuid4().hex[:8]}"
    total = args.seconds * (n_runs + bool(args.reference_model)) + 30 * (n_runs + 1)
    sim = subprocess.Popen([sys.executable, "-m", "bci_stream.cli", "simulate", "--channels", str(args.channels),
                            "--sfreq", str(args.sfreq), "--classes", str(card.n_classes), "--counter",
                            "--name", name, "--duration", str(total)], cwd=ROOT, env=dict(os.environ),
                           stdout=subprocess.DEVNULL)
    try:
        time.sleep(2.0)
        print(f"phantom: {args.channels} ch @ {args.sfreq:g} Hz (+SAMPLE_INDEX), hop {args.hop * 1000:g} ms, "
              f"model {model.name} ({card.n_classes} classes), {args.seconds:g} s per pipeline, {os.cpu_count()} CPUs")
        results = _run_pipelines(args, model, name, waits)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}")
    return 0


def _checked(args, model: Path) -> tuple:
    """``(card, wait modes)`` once the model, the stream's shape, the waits and ``--model-b`` fit; else exits."""
    if not model.exists():
        sys.exit(f"no model at {model}: run `make demo-model` (or pass --model)")
    from bci_stream.contract.model_card import ModelCard

    card = ModelCard.from_onnx(model)
    if card.n_channels != args.channels or card.sfreq != args.sfreq:
        sys.exit(f"model expects {card.n_channels} ch @ {card.sfreq:g} Hz; pass a matching --model")
    from bci_stream.live.wait import WAIT_MODES

    waits = [w.strip() for w in args.waits.split(",") if w.strip()]
    unknown = [w for w in waits if w not in WAIT_MODES]
    if unknown or not waits:
        sys.exit(f"--waits: {unknown or 'none given'}; choose from {', '.join(WAIT_MODES)}")
    if args.model_b:
        card_b = ModelCard.from_onnx(args.model_b)
        if not card_b.is_embedding or not args.gallery_index:
            sys.exit("--model-b must be an embedding model and comes with --gallery-index")
        if card_b.n_channels != card.n_channels or card_b.input_sfreq != card.input_sfreq:
            sys.exit(f"--model-b expects {card_b.n_channels} ch @ {card_b.input_sfreq:g} Hz; the stream is the --model's")
    return card, waits


def _run_pipelines(args, model: Path, name: str, waits: list[str]) -> dict:
    """Every pipeline asked for, one after the other on the stream ``name``: the figures by run."""
    results: dict = {"config": vars(args), "runs": {}}
    runs = results["runs"]
    for wait in waits:
        runs[f"wait={wait}"] = run_ours(model, name, args.seconds, args.hop, args.threads, wait=wait,
                                        breakdown=args.breakdown)
        print_row(f"bci-stream, incremental spectrogram, wait {wait}", runs[f"wait={wait}"])
        if args.model_b and wait == waits[0]:  # right after the classifier's run, on the same stream
            _run_model_b(args, name, wait, results)
    for variant in variant_names(args.variants):
        runs[variant] = run_ours(model, name, args.seconds, args.hop, args.threads, wait=waits[0],
                                 breakdown=args.breakdown, overrides=variant_config(variant, name))
        print_row(f"bci-stream, {variant}, wait {waits[0]}", runs[variant])
    if args.full_features:
        runs["full-features"] = run_ours(model, name, args.seconds, args.hop, args.threads, incremental=False,
                                         breakdown=args.breakdown)
        print_row("bci-stream, every spectrogram in full, wait block", runs["full-features"])
    if args.old:
        old_model = Path(args.old_model or model)
        runs["old"] = run_other_checkout(Path(args.old), old_model, name, args.seconds, args.hop, args.threads)
        print_row(f"bci-stream as in {args.old} (before), model {old_model}", runs["old"])
    results["ours"] = runs[f"wait={waits[0]}"]  # the first wait mode (block by default), as earlier JSON had it
    if args.reference_model:
        _run_reference(args, name, results)
    if not args.no_baseline:
        _run_baseline_ratios(args, model, name, waits[0], results)
    return results


def _run_model_b(args, name: str, wait: str, results: dict) -> None:
    """The embedding model ``--model-b`` with retrieval, and its latency over the classifier's."""
    runs = results["runs"]
    runs["model-b"] = b = run_ours(Path(args.model_b), name, args.seconds, args.hop, args.threads, wait=wait,
                                   gallery_index=args.gallery_index)
    print_row(f"bci-stream, embedding model {Path(args.model_b).name} + retrieval (top-{b['top_k']} of "
              f"{b['gallery_images']} images), wait {wait}", b)
    results["p99_embedding_vs_classifier"] = b["p99_ms"] / runs[f"wait={wait}"]["p99_ms"]
    results["p50_embedding_vs_classifier"] = b["p50_ms"] / runs[f"wait={wait}"]["p50_ms"]
    print(f"embedding / classifier: p50 x{results['p50_embedding_vs_classifier']:.2f}, "
          f"p99 x{results['p99_embedding_vs_classifier']:.2f} (budget: p99 x1.5)")


def _run_reference(args, name: str, results: dict) -> None:
    """This checkout with ``--reference-model``, and the model's p99 over the reference's."""
    from bci_stream.contract.model_card import ModelCard

    reference = ModelCard.from_onnx(args.reference_model)
    results["reference"] = run_ours(Path(args.reference_model), name, args.seconds, args.hop, args.threads,
                                    breakdown=args.breakdown)
    print_row(f"bci-stream with the reference model {args.reference_model} ({reference.features().describe()})",
              results["reference"])
    results["p99_vs_reference"] = results["ours"]["p99_ms"] / results["reference"]["p99_ms"]
    print(f"model / reference: p99 x{results['p99_vs_reference']:.2f} (budget: x1.5)")


def _run_baseline_ratios(args, model: Path, name: str, first_wait: str, results: dict) -> None:
    """The do-it-yourself baseline, and its latency over each of this checkout's runs."""
    results["baseline"] = run_baseline(model, name, args.seconds, args.hop)
    print_row("baseline (mne-lsl get_data + scipy.stft + torch eager)", results["baseline"])
    results["ratios"] = {}
    for label, r in results["runs"].items():
        ratio = {"p50": results["baseline"]["p50_ms"] / r["p50_ms"], "p99": results["baseline"]["p99_ms"] / r["p99_ms"]}
        results["ratios"][label] = ratio
        print(f"baseline / {label}: p50 x{ratio['p50']:.1f}, p99 x{ratio['p99']:.1f}")
    results["p99_ratio"] = results["ratios"][f"wait={first_wait}"]["p99"]
    results["p50_ratio"] = results["ratios"][f"wait={first_wait}"]["p50"]


def print_row(label: str, r: dict) -> None:
    extra = f", lost samples {r['lost_samples']}" if "lost_samples" in r else ""
    print(f"{label}:\n  n={r['n']}  p50 {r['p50_ms']:.2f} ms  p95 {r['p95_ms']:.2f}  p99 {r['p99_ms']:.2f}  "
          f"max {r['max_ms']:.2f}  drift {r['drift_ms']:+.3f} ms ({r['drift_window']})  CPU {r['cpu_percent']:.0f}%{extra}")
    for stage, figures in r.get("stages", {}).items():
        print(f"    {stage:<48} p50 {figures['p50_ms']:.3f} ms  p99 {figures['p99_ms']:.3f} ms")


if __name__ == "__main__":
    sys.exit(main())
