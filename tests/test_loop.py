"""The live loop's scheduling without LSL (timeflux-style: set the input, call step(), look at the
output): hop spacing, backlog skipping, event-locked onsets, recovery. Milliseconds, no sleeps."""

import json

import numpy as np
import pytest

from bci_stream.live.decoder import Decoder
from bci_stream.live.session import LiveConfig, LiveSession
from bci_stream.live.sinks import CallbackSink
from bci_stream.live.wait import ChunkWaiter, WaitConfig
from bci_stream.testing import CollectingSink, FakeClock, ScriptedMarkers, ScriptedSource


@pytest.fixture(scope="module")
def decoder(tiny_model):
    return Decoder(tiny_model, providers="cpu")


def session_for(decoder, mode="continuous", **config):
    source, outlet, markers = ScriptedSource(decoder.card.n_channels), CollectingSink(), ScriptedMarkers()
    session = LiveSession(decoder, LiveConfig(mode=mode, **config), source=source, outlet=outlet,
                          markers=markers if mode == "event" else None)
    return session, source, outlet, markers


def ends(outlet):
    return [p.window_end_sample for p in outlet.decisions]


def test_one_decision_per_hop_from_the_first_full_window(decoder):
    session, source, outlet, _ = session_for(decoder)
    window, hop = decoder.card.window_samples, session.hop
    for _ in range(50):
        source.feed(20)
        session.step()
    assert ends(outlet)[0] == window  # the first window is complete after 440 samples (22 chunks of 20)
    assert np.all(np.diff(ends(outlet)) == hop) and ends(outlet)[-1] == 1000
    assert window == 440


def test_a_backlog_is_skipped_and_counted_not_decoded_late(decoder):
    session, source, outlet, _ = session_for(decoder)
    for _ in range(30):
        source.feed(20)
        session.step()
    before = len(outlet.decisions)
    source.feed(500)  # a burst: 25 hops at once
    session.step()
    assert session.state.n_skipped == 25 - 1  # all but the newest window
    assert len(outlet.decisions) == before + 1 and ends(outlet)[-1] == 600 + 500


def test_event_locked_decision_waits_for_its_epoch_and_drops_markers_without_samples(decoder):
    session, source, outlet, markers = session_for(decoder, mode="event")
    card = decoder.card
    source.feed(200)
    session.step()
    onset_t = source.t0 + 150 / 1000.0  # a marker on sample 150
    markers.queue = [(onset_t, "stim-150"), (source.t0 - 10.0, "too-old")]
    session.step()
    assert outlet.decisions == [] and [m for _, m in session._pending] == ["stim-150"]  # epoch incomplete
    source.feed(card.offset_samples + card.window_samples)
    session.step()
    assert ends(outlet) == [150 + card.offset_samples + card.window_samples]
    assert outlet.decisions[0].marker == "stim-150" and session._pending == []
    markers.queue = [(onset_t + 0.0004, "stim-150-again")]  # within half a sample: the same onset
    session.step()
    assert ends(outlet)[-1] == ends(outlet)[0]


def test_a_marker_before_its_samples_stays_pending(decoder):
    session, source, outlet, markers = session_for(decoder, mode="event")
    source.feed(100)
    session.step()
    markers.queue = [(source.t0 + 0.5, "future")]  # sample 500 has not arrived
    session.step()
    assert [m for _, m in session._pending] == ["future"] and not outlet.decisions


def test_loss_resets_buffer_and_filters_and_the_gap_closes_when_data_resume(decoder):
    session, source, outlet, _ = session_for(decoder)
    for _ in range(30):
        source.feed(20)
        session.step()
    n_before = len(outlet.decisions)
    source.lose()
    session.step()  # lost, reconnected at once, no data yet
    assert session.state.stream_status == "reconnected" and session.ring.available == 0
    assert not session.state.gaps  # the gap is open until data flow
    source.feed(20, gap=1500)
    session.step()
    assert session.state.stream_status == "connected" and len(session.state.gaps) == 1
    for _ in range(25):
        source.feed(20)
        session.step()
    assert len(outlet.decisions) > n_before  # decoding resumed after a fresh window filled
    assert session.ring.count - session.ring.start_index >= decoder.card.window_samples


def test_event_mode_decodes_only_markers_named_as_stimuli(decoder):
    source, outlet, markers = ScriptedSource(decoder.card.n_channels), CollectingSink(), ScriptedMarkers()
    session = LiveSession(decoder, LiveConfig(mode="event", stimuli=("square/*",)), source=source, outlet=outlet,
                          markers=markers)
    source.feed(100)
    session.step()
    markers.queue = [(source.t0 + 0.05, "square/1"), (source.t0 + 0.06, "rt"), (source.t0 + 0.07, "square/2")]
    source.feed(600)
    session.step()
    assert [p.marker for p in outlet.decisions] == ["square/1", "square/2"]
    assert "rt" in [m for _, m in session.state.markers]  # shown, not decoded


def test_event_decisions_are_scored_against_the_stimulus_shown(decoder):
    source, outlet, markers = ScriptedSource(decoder.card.n_channels), CollectingSink(), ScriptedMarkers()
    session = LiveSession(decoder, LiveConfig(mode="event"), source=source, outlet=outlet, markers=markers)
    ids = decoder.card.class_ids
    source.feed(100)
    session.step()
    markers.queue = [(source.t0 + 0.05, f"{ids[1]}_3"), (source.t0 + 0.07, "response")]
    source.feed(600)
    session.step()
    scored, unscored = outlet.decisions
    assert scored.truth == 1 and scored.hit == (scored.top5[0] == 1) and unscored.truth is None
    assert session.state.event_accuracy["n"] == 1 and session.state.event_accuracy["unscored"] == 1


def test_every_decision_sees_the_full_computations_features_to_the_bit_across_gaps_and_backlogs(decoder, monkeypatch):
    """The loop rolls the spectrogram (only new frames each hop); what the network sees and what it
    answers equal the full computation's, through steady hops, a burst, odd-sized chunks and a loss."""
    session, source, outlet, _ = session_for(decoder)
    checked, rolled = [], []
    roll = decoder.rolling.roll
    monkeypatch.setattr(decoder.rolling, "roll", lambda *a, **k: rolled.append(1) or roll(*a, **k))

    def check(p):
        data, _ = session.ring.window(p.window_end_sample, session.window)
        full = decoder.features(data.T)  # the full computation, as before the incremental path
        np.testing.assert_array_equal(decoder.last_features.view(np.uint32), full.view(np.uint32))
        reference = decoder.session.run(None, {decoder.input_name: full[None]})[0][0]
        np.testing.assert_array_equal(p.probabilities, reference)  # IO binding: the same answer
        checked.append(decoder.rolling.end == p.window_end_sample)

    session.sinks.append(CallbackSink(check))
    for n in [20] * 40 + [7, 13, 20, 300, 20, 33, 27] + [20] * 10:
        source.feed(n)
        session.step()
    source.lose()
    session.step()
    for _ in range(40):
        source.feed(20, gap=0)
        session.step()
    assert len(checked) > 50 and all(checked) and len(rolled) > 40 and len(rolled) < len(checked)


class TimedSource:
    """Chunks that become available at given clock times; each pull costs ``pull_cost`` s."""

    def __init__(self, clock: FakeClock, arrivals: list[float], pull_cost: float = 0.0001):
        self.clock, self.arrivals, self.pull_cost = clock, list(arrivals), pull_cost
        self.pulls: list[float] = []  # timeouts asked for

    def pull(self, timeout):
        self.pulls.append(timeout)
        if timeout > 0 and self.arrivals and self.clock.t < self.arrivals[0] <= self.clock.t + timeout:
            self.clock.t = self.arrivals[0]  # a blocking wait ends when the chunk comes
        if self.arrivals and self.arrivals[0] <= self.clock.t:
            t = self.arrivals.pop(0)
            return np.zeros((20, 2), np.float32), t - 0.019 + np.arange(20) / 1000.0  # stamps up to t
        self.clock.t += timeout if timeout > 0 else self.pull_cost
        return np.empty((0, 2), np.float32), np.empty(0)


def test_poll_sleeps_until_shortly_before_the_chunk_is_due_then_polls_without_blocking():
    clock = FakeClock()
    source = TimedSource(clock, [1000.020, 1000.040])
    waiter = ChunkWaiter(WaitConfig("poll", lead=0.001, grace=0.004), source, clock=clock, sleep=clock.sleep)
    samples, stamps = waiter.pull(0.05, due=None)  # nothing known yet: a blocking pull
    assert len(stamps) == 20 and source.pulls == [0.05] and clock.t == 1000.020
    due = waiter.due(0.020)  # the next chunk's last sample: 20 ms after the newest stamp, plus the lag (0)
    assert due == pytest.approx(1000.040)
    source.pulls.clear()
    samples, stamps = waiter.pull(0.05, due=due)
    assert clock.sleeps == [pytest.approx(0.019)]  # slept until 1 ms before it was due
    assert len(stamps) == 20 and set(source.pulls) == {0.0} and 5 <= len(source.pulls) <= 12  # then polled
    assert waiter.n_late == 0


def test_poll_falls_back_to_a_blocking_pull_when_the_chunk_is_late_and_prewarm_touches_first():
    clock = FakeClock()
    touched = []
    source = TimedSource(clock, [1000.030])
    waiter = ChunkWaiter(WaitConfig("prewarm", lead=0.001, grace=0.002), source, clock=clock, sleep=clock.sleep,
                         touch=lambda: touched.append(clock.t))
    samples, stamps = waiter.pull(0.05, due=1000.010)  # expected at 10 ms, comes at 30 ms
    assert touched == [pytest.approx(1000.009)] and len(stamps) == 20 and clock.t == 1000.030
    assert waiter.n_late == 1 and source.pulls[-2:] == [0.0, 0.05]  # polled until 12 ms, then blocked


def test_spin_never_sleeps_and_block_never_polls():
    clock = FakeClock()
    source = TimedSource(clock, [1000.002])
    spin = ChunkWaiter(WaitConfig("spin"), source, clock=clock, sleep=clock.sleep)
    assert len(spin.pull(0.05, due=None)[1]) == 20 and clock.sleeps == [] and spin.n_polls > 10
    source = TimedSource(clock, [1000.010])
    block = ChunkWaiter(WaitConfig("block"), source, clock=clock, sleep=clock.sleep)
    assert len(block.pull(0.05, due=1000.010)[1]) == 20 and source.pulls == [0.05]
    with pytest.raises(ValueError, match="wait mode"):
        WaitConfig("busy")


def test_the_loop_predicts_the_next_due_time_from_the_stamps_and_forgets_it_after_a_loss(decoder):
    session, source, outlet, _ = session_for(decoder)
    for _ in range(25):
        source.feed(20)
        session.step()
    assert outlet.decisions and session._due is not None
    newest = float(session.ring.latest(1)[1][0])
    lag = min(session.waiter._lags)
    assert session._due == pytest.approx(newest + 0.020 + lag)  # the next hop's last sample
    source.lose()
    session.step()
    assert session._due is None and session.waiter.last_stamp is None


def test_an_out_of_distribution_episode_is_one_warning_then_one_cleared(decoder, tiny_phantom_config, tmp_path,
                                                                         caplog):
    """Phantom EEG, then 2 s of it x 30 (the figures move every decision: each used to be a new
    warning), then the phantom again: one ``ood_warning`` record and log line, one ``ood_cleared``."""
    from bci_stream.sources.phantom import Phantom

    stream = Phantom(tiny_phantom_config).new_stream(subject=1, seed=5)
    session, source, outlet, _ = session_for(decoder, log_path=tmp_path / "ood.jsonl")
    seen = []
    for scale in [1, 1, 30, 30, 1, 1, 1, 1]:
        for _ in range(50):
            source.feed_array(stream.read(20)[0].T * scale)
            with caplog.at_level("WARNING", logger="bci_stream.live.session"):
                session.step()
            seen.append(decoder.ood.warning)
    session.close()
    records = [json.loads(line) for line in (tmp_path / "ood.jsonl").read_text().splitlines()]
    events = [r["event"] for r in records if r.get("event", "").startswith("ood")]
    assert events == ["ood_warning", "ood_cleared"], events
    assert len({w for w in seen if w}) == 1  # one message for the whole episode
    assert seen[-1] == "" and seen[99] == ""  # in distribution before and after it
    lines = [r.getMessage() for r in caplog.records if r.name == "bci_stream.live.session"]
    assert len(lines) == 2 and "far outside" in lines[0] and "back within" in lines[1], lines


def test_a_nan_burst_into_a_filtered_model_withholds_its_windows_then_decisions_flow_again(tiny_model, tmp_path,
                                                                                           tiny_phantom_config):
    """A 2-s NaN burst on one channel into a model with a band-pass in its card: the windows holding
    NaN are withheld, the filter restarts at the first finite sample (logged once) and every later
    window is decided (the filter state used to stay NaN: every later window withheld)."""
    from model_variants import with_bandpass

    from bci_stream.sources.phantom import Phantom

    decoder = Decoder(with_bandpass(tiny_model, tmp_path / "bandpass.onnx"), providers="cpu")
    assert decoder.card.preprocessing_spec().filters  # the live loop runs the filter
    stream = Phantom(tiny_phantom_config).new_stream(subject=1, seed=5)
    session, source, outlet, _ = session_for(decoder, log_path=tmp_path / "nan.jsonl")
    burst = range(1000, 3000)  # samples
    for i in range(0, 6000, 20):
        chunk = stream.read(20)[0].T.copy()
        rows = [r for r in range(20) if i + r in burst]
        chunk[rows, 3] = np.nan
        source.feed_array(chunk)
        session.step()
    session.close()
    records = [json.loads(line) for line in (tmp_path / "nan.jsonl").read_text().splitlines()]
    withheld = [r["window_end_sample"] for r in records if r.get("event") == "withheld"]
    decided = ends(outlet)
    window = decoder.card.window_samples
    assert withheld and all(burst.start < end <= burst.stop + window for end in withheld)  # only windows with NaN
    assert all("non-finite" in r["reason"] for r in records if r.get("event") == "withheld")
    after = [end for end in decided if end > burst.stop + window]  # clean windows after the burst
    assert len(after) == (6000 - (burst.stop + window)) // session.hop  # every one decided
    resets = [r for r in records if r.get("event") == "filter_reset"]
    assert len(resets) == 1 and resets[0]["channels"] == [decoder.card.ch_names[3]]
    assert all(np.isfinite(p.probabilities).all() for p in outlet.decisions)


def test_latency_and_the_outage_length_are_measured_on_the_sessions_clock(decoder):
    """A scripted clock: each chunk 'arrives' 2 ms after its last sample, so every latency is 2 ms;
    the stream is lost, and data resume 1.5 s of clock after the last sample: the gap is 1.5 s."""
    now = {"t": 0.0}
    source, outlet = ScriptedSource(decoder.card.n_channels), CollectingSink()
    session = LiveSession(decoder, LiveConfig(), source=source, outlet=outlet, clock=lambda: now["t"])
    for _ in range(30):
        source.feed(20)
        now["t"] = source.t0 + (source.sent - 1) / source.sfreq + 0.002
        session.step()
    assert outlet.decisions and all(p.latency_ms == pytest.approx(2.0, abs=1e-6) for p in outlet.decisions)
    last = source.t0 + (source.sent - 1) / source.sfreq
    source.lose()
    session.step()
    assert not session.state.gaps  # open until data flow again
    source.feed(20, gap=1500)
    now["t"] = last + 1.5
    session.step()
    assert session.state.gaps == [(last, pytest.approx(1.5, abs=1e-9))]
