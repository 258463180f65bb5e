#!/usr/bin/env python
"""Soak test: the live decoder for N minutes against a phantom headset with faults injected on a schedule.

Four processes, as in real use: a phantom **source** (128 ch x 1 kHz by default, a float64
``SAMPLE_INDEX`` counter that starts just below 2**24 so the run crosses it), **``bci-stream live
--headless --log``** with the demo model, a second one beside it with the same network behind a
band-pass 5-45 Hz card (**the filtered model**: the causal filter path, whose state a NaN burst must
not poison; ``--no-filtered`` leaves it out), and this driver, which injects faults once per cycle
(``--cycle``, 10 minutes by default, or the whole run when shorter):

    at 15 % NaN burst (0.2 s on 3 channels)        at 50 % log disk full for 8 s (RLIMIT_FSIZE)
    at 25 % short stall (0.5 s, then a burst)      at 60 % long stall (3 s: a gap)
    at 35 % source killed, back after 2 s          at 70 % NaN burst (2 s on 3 channels)
                                                   at 80 % renderer child killed (--renderer tiny)

and reports decisions, lost samples (from the counter), withheld windows (vs the NaN bursts),
logged gaps against the injected outages, RSS of the live process at start and end, and latency
p50/p99 per slice (10-minute slices; sixths of a shorter run); for the filtered model its
decisions, withheld windows, ``filter_reset`` records and the decisions after each NaN burst (the
filters recovered). The disk-full and renderer faults go to the demo model's process only. Prints
the figures, writes JSON.

    python tools/soak.py --minutes 60 --json soak.json
    python tools/soak.py --minutes 6 --cycle 180 --json soak.json      # two of each fault, 6 minutes
    python tools/soak.py --minutes 1 --channels 16 --model tiny.onnx   # what the slow test runs

Each outage is judged (``ok``) against what the live decoder promises:
- a source killed and restarted: one gap logged, within ``GAP_TOLERANCE_S`` of the real absence (from
  the kill to the new process's first sample). The counter carries on across the restart as if the
  source had kept counting (its first value comes from the wall time since the first source's first
  sample), so the gap's ``missing_samples`` (the live log's, from the counter) are the absence plus
  the reconnection, in samples.
- a stall of at least ``lost_after`` (the live default, 1 s): one gap of the stall's length, and
  ``missing_samples`` 0 (the outlet stayed open: every sample arrives, late).
- a shorter stall: no gap at all. It is a delivery delay, not a data gap: the stream only counts as
  lost after ``lost_after`` s of silence, and every sample arrives (late, in a burst), which the
  counter checks: the run's ``lost_samples`` (samples missing while connected) stays 0.

The "disk full" fault lowers the live process's file-size limit (``prlimit``) to just past its
log's current size, then lifts it: the same ``EFBIG``/``ENOSPC`` path as a full disk, without a
mount.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # dummy_pipelines: random-weight pipelines live with the tests (diffusers' way)

from bci_stream.resources import DEMO_MODEL  # noqa: E402

COUNTER_START = 2**24 - 20_000  # crosses 2**24 (float32's last exact integer) 20 s into the run at 1 kHz
CYCLE_S = 600.0  # faults: one of each per cycle (--cycle)
SLICE_S = 600.0  # latency percentiles per 10-minute slice (the "last 10 minutes vs the first")
GAP_TOLERANCE_S = 0.1  # a logged gap within this of the injected outage
FILTERED_BAND = (5.0, 45.0)  # Hz: the filtered model's band-pass (issue 22: `--bandpass 5 45`)


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``kind`` at ``at`` seconds after the run starts, lasting ``seconds``."""

    kind: str  # nan | stall | kill_source | disk_full | kill_renderer
    at: float
    seconds: float


def schedule(total: float, renderer: bool, cycle: float = CYCLE_S) -> list[Fault]:
    """The faults of a run of ``total`` seconds: one of each per ``cycle`` s (see the module docstring)."""
    cycle = min(cycle, total)
    plan = [("nan", 0.15, 0.2), ("stall", 0.25, 0.5), ("kill_source", 0.35, 2.0), ("disk_full", 0.50, 8.0),
            ("stall", 0.60, 3.0), ("nan", 0.70, 2.0)] + ([("kill_renderer", 0.80, 0.0)] if renderer else [])
    faults = []
    for start in np.arange(0.0, total - cycle + 1e-9, cycle):
        faults += [Fault(kind, float(start + frac * cycle), dur) for kind, frac, dur in plan]
    return faults


# --- the source process ---------------------------------------------------------------------------------
def run_source(args) -> int:
    """Child: stream the phantom with a counter from ``--start-sample`` (plus the samples since the wall
    time ``--counter-origin``, when given: a restarted source counts on as if it had never stopped);
    faults arrive on stdin as ``nan SECONDS`` (NaN on 3 channels) and ``stall SECONDS`` (push nothing,
    then the backlog at once). Prints ``first-sample WALL_TIME`` at its first sample."""
    from bci_stream.sources.phantom import Phantom, PhantomConfig
    from bci_stream.sources.simulate import OutletConfig, PacedPusher

    phantom = Phantom(PhantomConfig(n_channels=args.channels, sfreq=args.sfreq, n_classes=args.classes))
    stream = phantom.new_stream(subject=1, isi=0.5)  # the default live session: new to the model
    until = {"nan": 0.0, "stall": 0.0}

    def commands() -> None:
        for line in sys.stdin:
            kind, seconds = line.split()
            until[kind] = time.monotonic() + float(seconds)

    def read(n: int):
        data, markers = stream.read(n)
        if time.monotonic() < until["nan"]:
            data[:3] = np.nan
        return data, [(sample, text) for sample, text, _ in markers]

    outlet = OutletConfig(name=args.name, source_id=args.name, chunk=0.01, counter=True)
    pusher = PacedPusher(read, args.channels, args.sfreq, outlet, phantom.ch_names)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    threading.Thread(target=commands, daemon=True).start()
    t0, now = time.perf_counter(), time.time()
    since = round((now - args.counter_origin) * args.sfreq) if args.counter_origin else 0
    first = pusher.sent = args.start_sample + since  # the counter carries on across restarts, as an amplifier's would
    pusher.push_once()
    print(f"first-sample {now:.6f}", flush=True)  # the driver times the real outage of a restart from this
    while True:
        stalled = until["stall"] - time.monotonic()
        if stalled > 0:  # the driver hangs; its samples arrive late, in a burst
            time.sleep(stalled)
        due = t0 + (pusher.sent - first + pusher.chunk_samples) / args.sfreq
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        pusher.push_once()


# --- the driver -------------------------------------------------------------------------------------------
class Driver:
    """Starts the source and the live decoder, injects the faults, samples the live process's RSS."""

    def __init__(self, args, workdir: Path):
        self.args, self.workdir = args, workdir
        self.name = f"soak-{uuid.uuid4().hex[:8]}"
        self.log_path = workdir / "soak.jsonl"
        self.env = dict(os.environ)
        self.source: subprocess.Popen | None = None
        self.live: subprocess.Popen | None = None
        self.filtered: subprocess.Popen | None = None  # the band-passed model's decoder (None: --no-filtered)
        self.filtered_log = workdir / "soak-filtered.jsonl"
        self.filtered_output: list[str] = []
        self.t0: float | None = None  # wall time the live loop started
        self.counter_origin = 0.0  # wall time of the first source's first sample (counter value COUNTER_START)
        self.rss: list[tuple[float, float]] = []  # (seconds since t0, MiB)
        self.injected: list[dict] = []
        self.live_output: list[str] = []

    def start_source(self) -> None:
        """A source process; after the first, its counter goes on from the first one's (``counter_origin``)."""
        self.source = subprocess.Popen(
            [sys.executable, __file__, "--source", "--name", self.name, "--channels", str(self.args.channels),
             "--sfreq", str(self.sfreq), "--classes", str(self.classes), "--start-sample", str(COUNTER_START),
             "--counter-origin", f"{self.counter_origin:.6f}"],
            env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def wait_first_sample(self, timeout: float = 60.0) -> float:
        """Wall time the (re)started source pushed its first sample (as the source read it)."""
        line = [None]
        reader = threading.Thread(target=lambda: line.__setitem__(0, self.source.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not line[0] or not line[0].startswith("first-sample"):
            raise SystemExit("the phantom source did not start")
        return float(line[0].split()[1])

    def run(self) -> dict:
        from bci_stream.contract.model_card import ModelCard
        from bci_stream.lsl.config import use_loopback

        use_loopback(self.workdir)
        self.env["LSLAPICFG"] = os.environ["LSLAPICFG"]
        card = ModelCard.from_onnx(self.args.model)
        self.sfreq, self.classes = card.sfreq, card.n_classes
        if card.n_channels != self.args.channels:
            raise SystemExit(f"--channels {self.args.channels} but the model needs {card.n_channels}")
        total = self.args.minutes * 60.0
        faults = schedule(total, self.args.renderer == "tiny", self.args.cycle)
        self.start_source()
        self.counter_origin = self.wait_first_sample()
        self.live = self._start_live(self.args.model, self.log_path, total, self.renderer_options(),
                                     self.live_output)
        if self.args.filtered:
            from model_variants import with_bandpass  # tests/: a real network behind another card

            bandpass = with_bandpass(self.args.model, self.workdir / "bandpass.onnx", *FILTERED_BAND)
            self.filtered = self._start_live(bandpass, self.filtered_log, total,
                                             ["--renderer", "none", "--outlet-name", f"{self.name}-filtered"],
                                             self.filtered_output)
        self.t0 = time.time()
        pending = list(faults)
        next_rss = 0.0
        while self.live.poll() is None:
            now = time.time() - self.t0
            if now >= next_rss:
                self.sample_rss(now)
                next_rss = now + 1.0
            while pending and pending[0].at <= now:
                self.inject(pending.pop(0))
            time.sleep(0.02)
        self.stop()
        return self.report(total)

    def _start_live(self, model: Path, log_path: Path, total: float, options: list[str],
                    output: list[str]) -> subprocess.Popen:
        """A ``bci-stream live --headless`` process on the source's stream; returns once it decodes."""
        cmd = [sys.executable, "-m", "bci_stream.cli", "live", "--model", str(model), "--stream", self.name,
               "--headless", "--log", str(log_path), "--seconds", f"{total:g}", "--print-every", "1000000",
               "--providers", "cpu", "--resolve-timeout", "20", *options]
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        started = threading.Event()
        threading.Thread(target=_read_output, args=(proc, output, started), daemon=True).start()
        if not started.wait(120):
            self.stop()
            raise SystemExit(f"the live decoder ({model}) did not start:\n" + "\n".join(output[-20:]))
        return proc

    def renderer_options(self) -> list[str]:
        if self.args.renderer != "tiny":
            return ["--renderer", "none"]
        from dummy_pipelines import build_tiny_pipeline

        folder = build_tiny_pipeline(self.workdir / "tiny-sd")
        return ["--renderer", "diffusion", "--diffusion-model", str(folder), "--image-size", "64"]

    def inject(self, fault: Fault) -> None:
        at = time.time() - self.t0
        record = {**asdict(fault), "at": round(at, 3)}
        if fault.kind in ("nan", "stall"):
            self.source.stdin.write(f"{fault.kind} {fault.seconds}\n")
            self.source.stdin.flush()
        elif fault.kind == "kill_source":
            killed = time.time()
            self.source.kill()  # SIGKILL: the outlet vanishes without a goodbye
            self.source.wait()
            time.sleep(fault.seconds)
            self.start_source()  # its counter goes on as if the old one had kept counting
            # the real outage: from the kill to the new process's first sample (it starts in ~1 s)
            record["seconds"] = round(self.wait_first_sample() - killed, 3)
        elif fault.kind == "disk_full":
            size = self.log_path.stat().st_size if self.log_path.exists() else 0
            limit = size + 4096  # a few more records fit, then EFBIG ("File too large"): the disk is full
            resource.prlimit(self.live.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))  # soft only: liftable
            threading.Timer(fault.seconds, self._lift_limit).start()
        elif fault.kind == "kill_renderer":
            child = _renderer_child(self.live.pid)
            record["pid"] = child
            if child:
                os.kill(child, signal.SIGKILL)
        self.injected.append(record)

    def _lift_limit(self) -> None:
        if self.live.poll() is None:
            unlimited = resource.RLIM_INFINITY
            resource.prlimit(self.live.pid, resource.RLIMIT_FSIZE, (unlimited, unlimited))
            self.injected.append({"kind": "disk_freed", "at": round(time.time() - self.t0, 3), "seconds": 0.0})

    def sample_rss(self, at: float) -> None:
        try:
            for line in Path(f"/proc/{self.live.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.rss.append((round(at, 1), int(line.split()[1]) / 1024))
        except OSError:
            pass

    def stop(self) -> None:
        if self.filtered is not None and self.filtered.poll() is None:
            try:  # it runs for the same --seconds: let it write its session_end
                self.filtered.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for proc in (self.live, self.filtered, self.source):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()

    # --- the figures ------------------------------------------------------------------------------------
    def report(self, total: float) -> dict:
        text = self.log_path.read_text() if self.log_path.exists() else ""
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        summary_line = next((line for line in reversed(self.live_output) if "decisions," in line), "")
        decisions = [r for r in records if "probabilities" in r]
        events = [r for r in records if "event" in r]
        withheld = [r for r in events if r["event"] == "withheld"]
        lost = [r for r in events if r["event"] == "stream_lost"]
        restored = [r for r in events if r["event"] == "stream_restored"]
        end = next((r for r in events if r["event"] == "session_end"), {})
        start = next((r for r in events if r["event"] == "session_start"), {})
        t_start = start.get("t", decisions[0]["t_emitted"] if decisions else 0.0)
        n_slices = int(round(total / SLICE_S)) if total >= 2 * SLICE_S else 6
        edges = np.linspace(0, total, n_slices + 1)
        t_rel = np.array([d["t_emitted"] - t_start for d in decisions])
        lat = np.array([d["latency_ms"] for d in decisions])
        slices = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = lat[(t_rel >= lo) & (t_rel < hi)]
            slices.append({"from_s": round(float(lo), 1), "to_s": round(float(hi), 1), "decisions": int(sel.size),
                           "p50_ms": _pct(sel, 50), "p99_ms": _pct(sel, 99)})
        lost_samples = end.get("lost_samples", _summary_figure(summary_line, "lost samples"))
        outages = [f for f in self.injected if f["kind"] in ("kill_source", "stall")]
        gaps = [{"t_s": round(r["t"] - t_start, 3), "seconds_down": r.get("seconds_down"),
                 "missing_samples": r.get("missing_samples")} for r in restored]
        for outage in outages:
            judge_outage(outage, gaps, lost_samples, self.sfreq)
        nan_bursts = [f for f in self.injected if f["kind"] == "nan"]
        card_window = 0.44 + 0.02  # windows that overlap a burst: (burst + window) / hop
        rss = [m for t, m in self.rss if t >= 5.0] or [m for _, m in self.rss]
        return {
            "config": {"minutes": self.args.minutes, "model": str(self.args.model), "channels": self.args.channels,
                       "renderer": self.args.renderer, "counter_start": COUNTER_START, "cpus": os.cpu_count()},
            "decisions": len(decisions),
            "decisions_expected": int(total / 0.02),
            "lost_samples": lost_samples,
            "gap_samples": end.get("gap_samples"),
            "counter_last": int(COUNTER_START + total * self.sfreq),
            "withheld": len(withheld),
            "withheld_expected_about": int(sum(b["seconds"] + card_window for b in nan_bursts) / 0.02),
            "stream_lost_events": len(lost),
            "gaps": gaps,
            "outages": outages,
            "outages_ok": all(o["ok"] for o in outages),
            "faults": self.injected,
            "log_events": sorted({r["event"] for r in events}),
            "log_records_dropped": sum(r.get("dropped", 0) for r in events if r["event"] == "log_records_dropped"),
            "rss_mib": {"start": rss[0] if rss else None, "end": rss[-1] if rss else None,
                        "growth": (rss[-1] - rss[0]) if rss else None},
            "slices": slices,
            "p99_last_vs_first": (slices[-1]["p99_ms"] / slices[0]["p99_ms"]
                                  if slices and slices[0]["p99_ms"] and slices[-1]["p99_ms"] else None),
            "live_exit_code": self.live.returncode,
            "live_summary": summary_line,
            "live_stderr_tail": [line for line in self.live_output if "error" in line.lower()][-5:],
            "filtered": self.report_filtered(t_start, nan_bursts) if self.filtered is not None else None,
        }

    def report_filtered(self, t_start: float, nan_bursts: list[dict]) -> dict:
        """The band-passed model's figures: decisions, withheld windows, ``filter_reset`` records, and
        per NaN burst the decisions in the 5 s after it (its windows) ended (> 0: the filters recovered)."""
        text = self.filtered_log.read_text() if self.filtered_log.exists() else ""
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        decisions = [r for r in records if "probabilities" in r]
        events = [r for r in records if "event" in r]
        end = next((r for r in events if r["event"] == "session_end"), {})
        t_rel = np.array([d["t_emitted"] - t_start for d in decisions])
        lat = np.array([d["latency_ms"] for d in decisions])
        after = []
        for burst in nan_bursts:
            clear = burst["at"] + burst["seconds"] + 0.46 + 0.5  # the window after it, and some slack
            after.append(int(((t_rel > clear) & (t_rel < clear + 5.0)).sum()))
        return {
            "preprocessing": f"bandpass {FILTERED_BAND[0]:g}-{FILTERED_BAND[1]:g} Hz (order 4)",
            "decisions": len(decisions),
            "withheld": sum(r["event"] == "withheld" for r in events),
            "filter_resets": sum(r["event"] == "filter_reset" for r in events),
            "decisions_5s_after_each_nan_burst": after,
            "lost_samples": end.get("lost_samples"),
            "gaps": end.get("gaps"),
            "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99),
            "exit_code": self.filtered.returncode,
            "summary": next((line for line in reversed(self.filtered_output) if "decisions," in line), ""),
        }


def _read_output(proc: subprocess.Popen, output: list[str], started: threading.Event) -> None:
    """Collect a live process's output lines; set ``started`` at its "decoding ..." line."""
    for line in proc.stdout:
        output.append(line.rstrip())
        if line.startswith("decoding "):
            started.set()


def judge_outage(outage: dict, gaps: list[dict], lost_samples: int | None, sfreq: float) -> None:
    """Add to ``outage`` (an injected kill or stall) the gaps the live log shows for it and whether
    they are right (``ok``; see the module docstring). ``gaps``: the ``stream_restored`` records
    (``t_s`` since the session start, ``seconds_down``, ``missing_samples``); ``lost_samples``: the
    run's samples missing while connected (counter)."""
    from bci_stream.live.config import LiveConfig

    near = [g for g in gaps if outage["at"] - 0.5 <= g["t_s"] <= outage["at"] + outage["seconds"] + 5]
    outage["logged_gaps"] = [g["seconds_down"] for g in near]
    outage["logged_total_s"] = round(sum(g["seconds_down"] or 0 for g in near), 3)
    outage["error_s"] = round(outage["logged_total_s"] - outage["seconds"], 3) if near else None
    missing = [g["missing_samples"] for g in near]
    outage["missing_samples"] = sum(missing) if near and None not in missing else None
    outage["missing_s"] = round(outage["missing_samples"] / sfreq, 3) if outage["missing_samples"] is not None else None
    outage["gap_expected"] = outage["kind"] == "kill_source" or outage["seconds"] >= LiveConfig.lost_after
    if not outage["gap_expected"]:  # a delivery delay: no gap, and the counter saw every sample arrive
        outage["ok"] = not near and lost_samples == 0
        outage["why"] = (f"shorter than lost_after ({LiveConfig.lost_after:g} s): not a data gap; "
                         f"counter: {lost_samples} samples missing while connected over the run")
        return
    right_length = len(near) == 1 and abs(outage["error_s"]) <= GAP_TOLERANCE_S
    if outage["kind"] == "stall":  # the outlet stayed open: every sample arrives, late
        outage["ok"] = right_length and outage["missing_samples"] == 0
    else:
        outage["ok"] = right_length


def _summary_figure(line: str, name: str) -> int | None:
    """An integer after ``name`` in the live summary line (``... lost samples 0, gaps 3``)."""
    import re

    match = re.search(rf"{name} (\d+)", line)
    return int(match.group(1)) if match else None


def _pct(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values.size else None


def _renderer_child(pid: int) -> int | None:
    """The pid of the live process's render child (multiprocessing spawn), or None."""
    try:
        import psutil

        for child in psutil.Process(pid).children(recursive=True):
            if any("spawn_main" in part for part in child.cmdline()):
                return child.pid
    except Exception:  # psutil missing or the process gone
        return None
    return None


def print_report(r: dict) -> None:
    print(f"decisions {r['decisions']} (~{r['decisions_expected']} expected at 50/s without faults), "
          f"lost samples {r['lost_samples']} (counter crossed 2**24 at {COUNTER_START} + 20 s), "
          f"withheld {r['withheld']} (about {r['withheld_expected_about']} for the NaN bursts)")
    for o in r["outages"]:
        print(f"  {o['kind']:12s} at {o['at']:7.1f} s for {o['seconds']:.3f} s -> logged gaps {o['logged_gaps']} "
              f"(error {o['error_s']} s, counter: {o['missing_samples']} samples missing) "
              f"{'ok' if o['ok'] else 'WRONG'}{' (no gap expected: ' + o['why'] + ')' if not o['gap_expected'] else ''}")
    print(f"every outage logged right (within {GAP_TOLERANCE_S} s): {r['outages_ok']}; samples missing across "
          f"gaps (counter) {r['gap_samples']}")
    rss = r["rss_mib"]
    if rss["start"] is not None:
        print(f"RSS {rss['start']:.1f} -> {rss['end']:.1f} MiB (growth {rss['growth']:+.1f} MiB)")
    for s in r["slices"]:
        print(f"  {s['from_s']:7.1f}-{s['to_s']:7.1f} s: {s['decisions']:6d} decisions, p50 {s['p50_ms']} ms, "
              f"p99 {s['p99_ms']} ms")
    print(f"p99 last/first slice {r['p99_last_vs_first']}; log events {r['log_events']}; "
          f"records dropped by the full disk {r['log_records_dropped']}; live exit code {r['live_exit_code']}")
    f = r.get("filtered")
    if f:
        print(f"filtered model ({f['preprocessing']}): {f['decisions']} decisions, {f['withheld']} withheld, "
              f"{f['filter_resets']} filter resets, decisions in the 5 s after each NaN burst "
              f"{f['decisions_5s_after_each_nan_burst']}, lost samples {f['lost_samples']}, gaps {f['gaps']}, "
              f"p50 {f['p50_ms']} ms p99 {f['p99_ms']} ms, exit code {f['exit_code']}")


def main(argv: list[str] | None = None) -> int:
    from bci_stream.commands._types import positive_float, positive_int

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=positive_float, default=60.0)
    parser.add_argument("--cycle", type=positive_float, default=CYCLE_S,
                        help="seconds per fault cycle (one of each fault per cycle)")
    parser.add_argument("--model", type=Path, default=DEMO_MODEL)
    parser.add_argument("--channels", type=positive_int, default=128)
    parser.add_argument("--renderer", choices=["none", "tiny"], default="none",
                        help="tiny: a tiny random diffusers pipeline in the render child (killed at 80 %% of a cycle)")
    parser.add_argument("--filtered", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the model behind a band-pass card in a second decoder (default: yes)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    # the source child
    parser.add_argument("--source", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--sfreq", type=float, default=1000.0, help=argparse.SUPPRESS)
    parser.add_argument("--classes", type=int, default=40, help=argparse.SUPPRESS)
    parser.add_argument("--start-sample", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--counter-origin", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--events", default="[]", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.source:
        return run_source(args)
    with tempfile.TemporaryDirectory(prefix="bci-stream-soak-") as work:
        result = Driver(args, Path(work)).run()
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
