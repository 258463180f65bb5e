"""Events from a channel of the EEG stream (bci_stream.live.channel_events): edge detection on trigger
codes and a noisy photodiode (unit tests), pairing with LSL markers, and the real test: a Muse
faces-vs-houses recording replayed over real LSL with its marker column as a channel of the EEG stream
AND as an LSL marker stream -> live decisions from ``--events-from Marker0`` equal the marker stream's,
the offset between the two is within one sample, and accumulation shows in the JSONL log and the outlet.
The real part is skipped when ``../shared/data/real`` is absent."""

import json
import threading
import time
from pathlib import Path

import numpy as np
import pylsl
import pytest

from bci_stream.live.channel_events import (
    ChannelEventsConfig,
    EdgeDetector,
    OffsetPairs,
    make_channel_events,
    parse_codes,
)

SFREQ = 256.0


def stamps(n: int, start: int = 0) -> np.ndarray:
    return (start + np.arange(n)) / SFREQ


def test_a_new_nonzero_trigger_code_is_one_event_at_its_first_sample_even_across_chunks():
    det = EdgeDetector(ChannelEventsConfig(channel="STI", codes=parse_codes("1:house;2:face")))
    values = np.zeros(40)
    values[5:9] = 1  # a code held for 4 samples: one event
    values[20] = 2
    values[21:24] = 3  # a code change without a 0 between: a new event
    values[30:40] = 2  # runs over the chunk boundary
    first = det.detect(values[:35], stamps(35))
    second = det.detect(np.r_[values[35:], [2, 2, 0, 2]], stamps(44)[35:])
    assert first == [(5 / SFREQ, "house"), (20 / SFREQ, "face"), (21 / SFREQ, "3"), (30 / SFREQ, "face")]
    assert second == [(43 / SFREQ, "face")]  # held across the boundary: not again; after a 0: again


def test_a_trigger_hold_off_drops_the_glitch_of_a_settling_code():
    det = EdgeDetector(ChannelEventsConfig(channel="STI", holdoff=0.02))
    values = np.zeros(30)
    values[10], values[11:14] = 4, 5  # bits settling: 4 for one sample, then 5
    assert det.detect(values, stamps(30)) == [(10 / SFREQ, "4")]


def test_a_noisy_photodiode_gives_one_event_per_flash_at_its_rising_crossing(rng):
    det = EdgeDetector(ChannelEventsConfig(channel="PD", kind="photodiode", threshold=0.5, holdoff=0.1))
    n = int(3 * SFREQ)
    light = np.zeros(n)
    onsets = [100, 300, 550]
    for s in onsets:
        light[s : s + 40] = 1.0  # a 156 ms flash
    noisy = light + rng.normal(0, 0.08, n)
    noisy[onsets[1] - 1] = 0.52  # noise crossing just before the edge: the event is one sample early, once
    events = []
    for lo in range(0, n, 37):  # odd chunk sizes
        events += det.detect(noisy[lo : lo + 37], stamps(n)[lo : lo + 37])
    assert [round(t * SFREQ) for t, _ in events] == [100, 299, 550]
    assert {text for _, text in events} == {"photodiode"}


def test_a_photodiode_without_a_threshold_and_a_decoded_channel_are_refused():
    with pytest.raises(ValueError, match="--events-threshold"):
        ChannelEventsConfig(channel="PD", kind="photodiode")
    with pytest.raises(ValueError, match="decodes that channel"):
        make_channel_events(ChannelEventsConfig(channel="af7"), ["TP9", "AF7"])
    with pytest.raises(ValueError, match="CODE:NAME"):
        parse_codes("1=house")


def test_channel_events_pair_with_lsl_markers_whichever_arrives_first():
    records = []
    pairs = OffsetPairs(window=0.5, on_pair=records.append)
    pairs.markers([(1.000, "face")])
    pairs.channel([(1.004, "face"), (2.0, "house")])
    pairs.markers([(1.998, "house"), (5.0, "face")])
    pairs.channel([(9.0, "face")])  # the 5.0 marker is now too old: unpaired
    s = pairs.summary()
    assert [r["offset_ms"] for r in records] == pytest.approx([4.0, 2.0])
    assert s["pairs"] == 2 and s["median_ms"] == pytest.approx(3.0) and s["unpaired_markers"] == 1
    assert s["unpaired_channel"] == 1


# --- real recordings over real LSL -------------------------------------------------------------
REAL = Path(__file__).resolve().parents[1].parent / "shared/data/real"
N170 = REAL / "eegnb_muse/N170/subject1/session1"
real = pytest.mark.skipif(not N170.is_dir(), reason=f"the real data sets are not at {REAL} (../shared/data/real)")


@pytest.fixture(scope="module")
def faces_model(tmp_path_factory):
    """A small faces-vs-houses model trained with ``bci-train`` on the first recording (the last is replayed)."""
    from offline_training.cli import main as bci_train

    run = tmp_path_factory.mktemp("faces")
    first = sorted(N170.glob("*.csv"))[0]
    assert bci_train(["fit", "--data", f"csv:{first},event_id=1:house;2:face,tmin=-0.1,tmax=0.6", "--out",
                      str(run / "run"), "--no-kd", "--epochs", "1", "--threads", "1", "--seed", "0",
                      "--student", "eegnet", "--window", "0", "0.6", "--bandpass", "1", "30"]) == 0
    assert bci_train(["export", str(run / "run"), "--out", str(run / "model.onnx")]) == 0
    return run / "model.onnx"


def _replay_into(recording, stream_name: str, sessions: list, got: dict, n_stimuli: int) -> tuple[list, dict]:
    """Replay ``recording`` at 8x into ``sessions`` until each decided ``n_stimuli`` windows; the last
    session's outlet samples read while it is up, and the decision counts."""
    from bci_stream.sources.replay import recording_pusher
    from bci_stream.sources.simulate import OutletConfig

    pusher = recording_pusher(recording, OutletConfig(name=stream_name, source_id=stream_name, counter=True), speed=8.0)
    for s in sessions:
        s.start()
    outlet_inlet = pylsl.StreamInlet(pylsl.resolve_byprop("source_id", sessions[-1].outlet.source_id, timeout=5)[0],
                                     recover=False)
    outlet_inlet.open_stream(timeout=5)
    runners = [threading.Thread(target=s.run, kwargs={"seconds": recording.duration / 8 + 30}) for s in sessions]
    for r in runners:
        r.start()
    pusher.start()
    deadline = time.monotonic() + recording.duration / 8 + 30  # a bound on waiting, not an assertion
    outlet = []
    while min(len(v) for v in got.values()) < n_stimuli and time.monotonic() < deadline - 2:
        time.sleep(0.05)
        outlet += outlet_inlet.pull_chunk(timeout=0.0)[0]
    time.sleep(0.3)
    outlet += outlet_inlet.pull_chunk(timeout=0.0)[0]
    counts = {k: len(v) for k, v in got.items()}
    for s in sessions:
        s.stop()
    for r in runners:
        r.join()
    pusher.close()
    return outlet, counts


@real
def test_events_from_the_marker_column_decode_as_the_marker_stream_within_one_sample(faces_model, stream_name,
                                                                                    tmp_path):
    from bci_stream.io import read_recording
    from bci_stream.live.accumulate import AccumulateConfig, Accumulator
    from bci_stream.live.decoder import Decoder
    from bci_stream.live.session import LiveConfig, LiveSession
    from bci_stream.sources.replay import with_events_channel

    recording = read_recording(sorted(N170.glob("*.csv"))[-1], event_id="1:house;2:face")
    recording, codes = with_events_channel(recording, "Marker0")
    assert codes == {"face": 1, "house": 2}  # named texts are numbered in sorted order
    card = Decoder(faces_model, providers="cpu").card
    complete = [(s, t) for s, t in recording.events if s + card.offset_samples + card.window_samples <= recording.n_times]
    base = dict(stream=stream_name, mode="event")
    got = {"markers": [], "channel": [], "accumulated": []}

    def session(key, **config):
        return LiveSession(Decoder(faces_model, providers="cpu"), LiveConfig(**base, **config),
                           listeners=[lambda p: got[key].append(p)])

    by_markers = session("markers")
    by_channel = session("channel", log_path=tmp_path / "channel.jsonl",
                         events=ChannelEventsConfig(channel="Marker0", codes=parse_codes("1:face;2:house")))
    accumulated = session("accumulated", log_path=tmp_path / "acc.jsonl", outlet_name=f"{stream_name}-acc",
                          accumulate=AccumulateConfig(enabled=True, max_repeats=3))
    sessions = [by_markers, by_channel, accumulated]
    outlet, counts = _replay_into(recording, stream_name, sessions, got, len(complete))

    assert len(complete) >= 150 and all(s.source.lost_samples == 0 for s in sessions)
    assert min(counts.values()) == len(complete), f"decisions {counts} of {len(complete)} stimuli"

    # 1. the channel's events are the marker stream's: same stimuli, same windows, same decisions
    assert [p.marker for p in got["channel"]] == [p.marker for p in got["markers"]] == [t for _, t in complete]
    assert [p.window_end_sample for p in got["channel"]] == [p.window_end_sample for p in got["markers"]]
    worst = max(float(np.abs(a.probabilities - b.probabilities).max()) for a, b in zip(got["channel"], got["markers"]))
    assert worst <= 1e-6
    # 2. the offset between each channel event and its LSL marker: within one sample, logged per pair
    summary = by_channel.state.summary()["channel_events"]
    offsets = summary["offset_vs_lsl_markers"]
    assert offsets["pairs"] == summary["events"] >= len(complete) and offsets["max_abs_ms"] <= 1e3 / recording.sfreq
    records = [json.loads(line) for line in (tmp_path / "channel.jsonl").read_text().splitlines()]
    assert sum(r.get("event") == "event_offset" for r in records) == offsets["pairs"]
    assert records[0]["events_from"]["channel"] == "Marker0" and records[0]["accumulate"] == {"enabled": False}
    # 3. accumulation: the stage on the marker stream's own decisions, in the log and on the outlet
    replay = Accumulator(AccumulateConfig(enabled=True, max_repeats=3), 2)
    expected = [replay(p) for p in got["markers"]]
    acc = got["accumulated"]
    assert [p.extra["repeats"] for p in acc] == [e.extra["repeats"] for e in expected]
    assert max(float(np.abs(a.probabilities - e.probabilities).max()) for a, e in zip(acc, expected)) <= 1e-5
    assert {p.extra["repeats"] for p in acc} == {1, 2, 3}
    log = [json.loads(line) for line in (tmp_path / "acc.jsonl").read_text().splitlines()]
    assert log[0]["accumulate"]["enabled"] is True and log[0]["accumulate"]["max_repeats"] == 3
    decisions = [r for r in log if "marker" in r and "event" not in r]
    assert [r["repeats"] for r in decisions] == [p.extra["repeats"] for p in acc] and all(r["accumulated"] for r in decisions)
    assert log[-1]["event"] == "session_end" and log[-1]["accumulation"]["final_decisions"] == sum(
        p.extra["final"] for p in acc)
    assert len(outlet) == len(acc) and [int(row[-1]) for row in outlet] == [p.extra["repeats"] for p in acc]
    assert accumulated.state.summary()["event_accuracy"]["n"] == len(acc)  # the accumulated decisions are scored
