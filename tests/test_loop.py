"""The live loop's scheduling without LSL (timeflux-style: set the input, call step(), look at the
output): hop spacing, backlog skipping, event-locked onsets, recovery. Milliseconds, no sleeps."""

import numpy as np
import pylsl
import pytest

from bci_stream.decoder import Decoder
from bci_stream.live import LiveConfig, LiveSession
from bci_stream.source import StreamLostError


class ScriptedSource:
    """Hands out the chunks it is given, stamped at 1 kHz from ``t0``; raises when told the stream is lost."""

    def __init__(self, n_channels: int, sfreq: float = 1000.0):
        self.n_channels, self.sfreq = n_channels, sfreq
        self.t0 = pylsl.local_clock() - 100.0
        self.sent = 0
        self.queue: list = []
        self.lost_samples = 0
        self.info = None
        self.connects = 0

    def feed(self, n: int, gap: int = 0) -> None:
        """Queue ``n`` samples, ``gap`` samples after the previous ones (missing data)."""
        self.sent += gap
        data = np.random.default_rng(self.sent).standard_normal((n, self.n_channels)).astype(np.float32) * 10
        self.queue.append((data, self.t0 + (self.sent + np.arange(n)) / self.sfreq))
        self.sent += n

    def lose(self) -> None:
        self.queue.append(StreamLostError("unplugged"))

    def connect(self, timeout=None) -> bool:
        self.connects += 1
        return True

    def pull(self, timeout):
        if not self.queue:
            return np.empty((0, self.n_channels), np.float32), np.empty(0)
        item = self.queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        pass


class CollectingOutlet:
    def __init__(self):
        self.decisions = []

    def push(self, p) -> None:
        self.decisions.append(p)


class ScriptedMarkers:
    def __init__(self):
        self.queue, self.changes, self.status = [], [], "connected"

    def pull(self):
        out, self.queue = self.queue, []
        return out

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def decoder(tiny_model):
    return Decoder(tiny_model, providers="cpu")


def session_for(decoder, mode="continuous", **config):
    source, outlet, markers = ScriptedSource(decoder.card.n_channels), CollectingOutlet(), ScriptedMarkers()
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
    source, outlet, markers = ScriptedSource(decoder.card.n_channels), CollectingOutlet(), ScriptedMarkers()
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
    source, outlet, markers = ScriptedSource(decoder.card.n_channels), CollectingOutlet(), ScriptedMarkers()
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
