"""Faults of the live loop: a stalled sender is one gap with nothing lost, a source killed and restarted
is one gap the counter accounts for, a wait for a stream that never comes ends at once on stop/Ctrl-C,
a decision that is not finite is withheld. Tests never time: the gaps' lengths are checked on a
scripted clock (tests/test_loop.py, ``LiveSession(clock=...)``); here only what holds under any load."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bci_stream.live.decoder import Decoder
from bci_stream.live.session import LiveConfig, LiveSession
from bci_stream.lsl.inlet import LSLSource, SourceConfig
from bci_stream.sources.phantom import Phantom
from bci_stream.sources.simulate import OutletConfig, PacedPusher

ROOT = Path(__file__).resolve().parents[1]


def test_a_stalled_sender_is_one_gap_with_nothing_lost(tiny_model, tiny_phantom_config, stream_name, tmp_path):
    """The outlet stays open but sends nothing for 3.1 s (a frozen driver), then goes on: one gap, no
    sample lost, the catch-up whole."""
    phantom = Phantom(tiny_phantom_config)
    stream = phantom.new_stream(subject=1, seed=9)
    stall = {"until": 0.0}

    def read(n):
        while time.monotonic() < stall["until"]:
            time.sleep(0.01)
        return stream.read(n)[0], []

    pusher = PacedPusher(read, tiny_phantom_config.n_channels, 1000.0,
                         OutletConfig(name=stream_name, source_id=stream_name, counter=True), phantom.ch_names)
    session = LiveSession(Decoder(tiny_model, providers="cpu"),
                          LiveConfig(stream=stream_name, log_path=tmp_path / "s.jsonl", lost_after=0.5))
    session.start()
    runner = threading.Thread(target=session.run, kwargs={"seconds": 7.0})
    runner.start()
    pusher.start()
    time.sleep(2.0)
    stall["until"] = time.monotonic() + 3.1
    runner.join()
    pusher.close()
    records = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    lost = [r for r in records if r.get("event") == "stream_lost"]
    restored = [r for r in records if r.get("event") == "stream_restored"]
    assert len(lost) == 1 and len(restored) == 1, [r.get("event") for r in records if r.get("event")]
    assert lost[0]["t_last_sample"] is not None
    # bounds that hold under any load: lost only after lost_after s of silence, within the 7-s run
    assert 0.5 <= restored[0]["seconds_down"] < 7.0, restored[0]
    assert abs(restored[0]["data_gap_seconds"]) < 0.05  # sample stamps (not time): the catch-up arrived whole
    assert restored[0]["missing_samples"] == 0  # ... as its counter says
    end = records[-1]
    assert end["event"] == "session_end" and end["gaps"] == 1 and end["seconds_down"] == restored[0]["seconds_down"]
    resumed = [r for r in records[records.index(restored[0]):] if "probabilities" in r]
    assert len(resumed) > 10


def _source_process(name: str, card, counter_origin: float = 0.0) -> subprocess.Popen:
    """The soak's phantom source (tools/soak.py) in a process of its own; from ``counter_origin`` (a
    wall time) its counter goes on as if it had counted since then."""
    return subprocess.Popen([sys.executable, str(ROOT / "tools" / "soak.py"), "--source", "--name", name,
                             "--channels", str(card.n_channels), "--sfreq", f"{card.input_sfreq:g}", "--classes",
                             str(card.n_classes), "--counter-origin", f"{counter_origin:.6f}"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))


def _first_sample(source: subprocess.Popen) -> float:
    """Wall time the source process pushed its first sample."""
    line = source.stdout.readline()
    assert line.startswith("first-sample"), line
    return float(line.split()[1])


def test_a_killed_and_restarted_source_is_one_gap_of_its_real_absence(tiny_model, stream_name, tmp_path):
    """The amplifier's process dies (SIGKILL: its outlet vanishes without a goodbye) and a new one with
    the same source id starts ~1 s later. The gap logged is the real absence (the kill to the new
    process's first sample): the decoder found the new outlet within a resolve wave, so the samples
    it sent meanwhile were not lost too; the counter (going on across the restart) agrees."""
    decoder = Decoder(tiny_model, providers="cpu")
    card = decoder.card
    first = _source_process(stream_name, card)
    second = None
    try:
        origin = _first_sample(first)
        session = LiveSession(decoder, LiveConfig(stream=stream_name, log_path=tmp_path / "k.jsonl"))
        session.start()
        runner = threading.Thread(target=session.run, kwargs={"seconds": 30.0})
        runner.start()
        time.sleep(1.0)
        killed = time.time()
        first.kill()
        first.wait()
        time.sleep(1.0)
        second = _source_process(stream_name, card, counter_origin=origin)
        absence = _first_sample(second) - killed
        deadline = time.monotonic() + 10.0
        while not session.state.gaps and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        session.stop()
        runner.join(timeout=10)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    records = [json.loads(line) for line in (tmp_path / "k.jsonl").read_text().splitlines()]
    restored = [r for r in records if r.get("event") == "stream_restored"]
    assert len(restored) == 1, [r.get("event") for r in records if r.get("event")]
    missing_s = restored[0]["missing_samples"] / card.input_sfreq  # the absence and the reconnection
    # the counter went on across the restart: every sample of the real absence is counted missing (a
    # chunk's rounding aside), and the outage the decoder lived covers them; how soon it found the new
    # outlet is the soak's figure (tests never time)
    assert missing_s > absence - 0.02, (restored[0], absence)
    assert 0 < restored[0]["seconds_down"] < 30.0, restored[0]
    end = records[-1]
    assert end["event"] == "session_end" and end["lost_samples"] == 0
    assert end["gap_samples"] == restored[0]["missing_samples"]


def test_stop_ends_an_endless_wait_for_a_stream():
    """-1 waits until the stream appears: only ``stop`` can end it (the wait looks every 10 ms); the
    wait's progress callback says it is under way before stop is set (no sleep, no timing)."""
    source = LSLSource(["O1"], 1000.0, SourceConfig(name="no-such-stream-anywhere", resolve_timeout=-1))
    waiting = threading.Event()
    source.on_wait = lambda seconds: waiting.set()
    result = {}
    waiter = threading.Thread(target=lambda: result.setdefault("ok", source.connect()))
    waiter.start()
    assert waiting.wait(timeout=30), "the wait never reported progress"
    assert waiter.is_alive()  # still waiting: -1 means until the stream appears
    source.stop_event.set()
    waiter.join(timeout=30)  # a bound on the test, not a timing assertion: without stop it never returns
    assert not waiter.is_alive() and result["ok"] is False


def test_ctrl_c_ends_bci_stream_live_waiting_forever_for_a_stream_with_one_line_and_no_empty_log(tiny_model,
                                                                                                  tmp_path):
    """The wait prints one line saying so (and how to stop); Ctrl-C then ends it with one summary
    line, exit code 130, no traceback, and no empty session log left behind."""
    log_path = tmp_path / "never.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "bci_stream.cli", "--local", "live", "--model", str(tiny_model),
                             "--stream", "never-there", "--headless", "--resolve-timeout", "-1", "--log",
                             str(log_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        line = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=60)  # imports and model load, then the wait's first line; a bound, not a timing
        first = line[0] if line else "(nothing printed)"
        assert first.strip() == "waiting for stream 'never-there' (Ctrl-C to stop)", first
        assert log_path.exists()  # opened at start: a path that cannot be written is refused at once
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [line for line in out.splitlines() if not line.startswith("  still waiting")]
    assert lines == ["stopped while waiting for stream 'never-there': no decisions"], out
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert not log_path.exists()  # nothing was logged: no empty file


def test_the_closing_line_of_a_session_without_decisions_says_so_not_nan():
    from bci_stream.commands.live import summary_line
    from bci_stream.live.state import SharedState

    state = SharedState()
    state.update(n_withheld=8)
    line = summary_line(state.summary())
    assert line.startswith("0 decisions, 8 withheld, no decisions, so no latency,") and "nan" not in line, line
    state.record_decision(np.ones(2) / 2, [0, 1], 1.25, 0, (1.0, 0.0, ""), np.zeros((1, 1, 1), np.float32))
    assert "latency p50 1.25 ms p99 1.25 ms" in summary_line(state.summary())


def test_non_finite_decisions_are_withheld_never_published(tiny_model, stream_name, tmp_path):
    """Finite but huge samples overflow the float32 features: the decision is withheld and logged."""
    decoder = Decoder(tiny_model, providers="cpu")
    card = decoder.card
    huge = np.full((card.n_channels, 3000), 3e38, np.float32)
    huge[:, ::2] = -3e38

    def read(n, state={"i": 0}):  # noqa: B006 - position in the block
        i = state["i"]
        state["i"] += n
        return huge[:, i % 2000 : i % 2000 + n], []

    pusher = PacedPusher(read, card.n_channels, card.sfreq, OutletConfig(name=stream_name, source_id=stream_name),
                         card.ch_names)
    published = []
    session = LiveSession(decoder, LiveConfig(stream=stream_name, log_path=tmp_path / "nan.jsonl"),
                          listeners=[published.append])
    session.start()
    runner = threading.Thread(target=session.run, kwargs={"seconds": 1.5})
    runner.start()
    pusher.start()
    runner.join()
    pusher.close()
    text = (tmp_path / "nan.jsonl").read_text()
    assert "NaN" not in text and not published
    withheld = [r for r in map(json.loads, text.splitlines()) if r.get("event") == "withheld"]
    assert withheld and all("non-finite" in w["reason"] for w in withheld)
    assert session.state.n_withheld >= len(withheld) > 10
