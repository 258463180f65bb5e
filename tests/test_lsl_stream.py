"""The simulator and the live source on real LSL streams over loopback."""

import time

import numpy as np
import pylsl
import pytest
from conftest import pull_samples

from bci_stream.lsl.inlet import (
    LSLSource,
    SourceConfig,
    StreamLostError,
    StreamMismatchError,
    channel_index,
    stream_channel_labels,
)
from bci_stream.sources.phantom import PhantomConfig
from bci_stream.sources.simulate import COUNTER_CHANNEL, OutletConfig, PacedPusher, phantom_pusher


def test_simulator_streams_labelled_eeg_counter_and_markers(stream_name):
    config = PhantomConfig(n_channels=32, n_classes=4, seed=1)
    pusher = phantom_pusher(config, OutletConfig(name=stream_name, source_id=stream_name, counter=True), isi=0.25)
    pusher.start(duration=3.0)
    try:
        info = pylsl.resolve_byprop("name", stream_name, timeout=5)[0]
        marker_info = pylsl.resolve_byprop("name", f"{stream_name}-markers", timeout=5)[0]
        assert info.type() == "EEG" and info.nominal_srate() == 1000 and info.channel_count() == 33
        inlet = pylsl.StreamInlet(info)
        labels = stream_channel_labels(inlet.info())
        assert labels[-1] == COUNTER_CHANNEL and "Oz" in labels and len(set(labels)) == 33
        markers = pylsl.StreamInlet(marker_info)
        markers.open_stream(timeout=5)
        inlet.open_stream(timeout=5)
        got, stamps, texts = [], [], []
        t_end = time.time() + 2.0
        while time.time() < t_end:
            chunk, ts = inlet.pull_chunk(timeout=0.1, as_numpy=True)
            if len(ts):
                got.append(np.array(chunk))
                stamps.append(np.array(ts))
            values, _ = markers.pull_chunk(timeout=0.0)
            texts += [v[0] for v in values]
        data = np.concatenate(got)
        counter = data[:, -1].astype(np.int64)
        assert len(counter) > 1000
        assert (np.diff(counter) == 1).all(), "samples lost or reordered"
        assert np.ptp(data[:, labels.index("Oz")]) > 1.0  # microvolt-scale signal
        t = np.concatenate(stamps)
        assert 0.9e-3 < np.median(np.diff(t)) < 1.1e-3
        assert texts and all(text.split("_")[0].startswith("n") for text in texts)
    finally:
        pusher.close()


def test_channel_selection_by_name_ignores_extras_and_names_missing():
    stream = ["TRIGGER", "oz", "O1", "Pz", "SAMPLE_INDEX", "O2"]
    np.testing.assert_array_equal(channel_index(stream, ["O1", "Oz", "O2"]), [2, 1, 5])
    with pytest.raises(StreamMismatchError, match=r"missing 2: POz, Iz"):
        channel_index(stream, ["O1", "POz", "Iz"], "stream 'amp'")


def _custom_outlet(name, labels, sfreq=1000.0, fmt=pylsl.cf_float32, unit="microvolts", stream_type="EEG"):
    info = pylsl.StreamInfo(name, stream_type, len(labels), sfreq, fmt, name)
    chans = info.desc().append_child("channels")
    for label in labels:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        if unit is not None:
            ch.append_child_value("unit", unit)
    return pylsl.StreamOutlet(info)


def test_source_picks_model_channels_from_a_shuffled_stream(stream_name):
    labels = ["TRIG", "O2", "Oz", "EOG", "O1"]
    outlet = _custom_outlet(stream_name, labels)
    source = LSLSource(["O1", "Oz", "O2"], 1000.0, SourceConfig(name=stream_name, resolve_timeout=5))
    assert source.connect()
    block = np.tile(np.arange(5, dtype=np.float32), (50, 1))  # each channel holds its stream position
    time.sleep(0.3)
    outlet.push_chunk(block)
    samples = pull_samples(source, 50)
    assert samples.shape == (50, 3)
    np.testing.assert_array_equal(samples[0], [4, 2, 1])  # O1, Oz, O2 positions in the stream
    source.close()
    del outlet


def test_source_refuses_wrong_rate_and_missing_channels(stream_name):
    outlet = _custom_outlet(stream_name, ["O1", "Oz", "O2"], sfreq=500.0)
    with pytest.raises(StreamMismatchError, match="500 Hz; the model needs 1000 Hz"):
        LSLSource(["O1", "Oz", "O2"], 1000.0, SourceConfig(name=stream_name, resolve_timeout=5)).connect()
    with pytest.raises(StreamMismatchError, match="missing 1: Iz"):
        LSLSource(["O1", "Iz"], 500.0, SourceConfig(name=stream_name, resolve_timeout=5)).connect()
    with pytest.raises(StreamMismatchError, match="500 Hz; the model needs 1000 Hz.*missing 1: Iz"):
        LSLSource(["O1", "Iz"], 1000.0, SourceConfig(name=stream_name, resolve_timeout=5)).connect()
    del outlet


def test_source_reports_a_vanished_stream_as_closed_at_the_next_pull(stream_name):
    """liblsl tells the inlet that the outlet left: the loss is reported as a closed stream, without
    waiting out the silence timeout (60 s here, so only liblsl's notice can end the loop)."""
    holder = {"outlet": _custom_outlet(stream_name, ["O1"])}
    source = LSLSource(["O1"], 1000.0, SourceConfig(name=stream_name, resolve_timeout=5, lost_after=60,
                                                    reopen_after=120))
    assert source.connect()
    for _ in range(5):
        holder["outlet"].push_chunk(np.zeros((10, 1), np.float32))
    assert len(pull_samples(source, 50)) == 50
    holder.clear()  # the last reference: the outlet leaves the network
    with pytest.raises(StreamLostError, match="closed"):
        for _ in range(400):  # a bound on the loop, not a timing assertion
            source.pull(0.05)
    assert source.inlet is None


def test_source_reports_a_silent_stream_once_lost_after_elapsed_on_its_clock(stream_name):
    """An outlet that stays open but sends nothing counts as lost once ``lost_after`` s of its (here
    scripted) clock passed without a sample: not before, and once only; data then flow as usual."""
    outlet = _custom_outlet(stream_name, ["O1"])
    now = {"t": 100.0}
    source = LSLSource(["O1"], 1000.0, SourceConfig(name=stream_name, resolve_timeout=5, lost_after=0.5),
                       clock=lambda: now["t"])
    assert source.connect()
    outlet.push_chunk(np.zeros((10, 1), np.float32))
    assert len(pull_samples(source, 10)) == 10
    silent = []
    for step in range(10):  # each empty pull: 0.125 s (exact in binary) later on the source's clock
        now["t"] += 0.125 if step else 0.0
        try:
            assert len(source.pull(0.0)[1]) == 0
            silent.append(step)
        except StreamLostError as err:
            assert "no data" in str(err) and step == 5  # idle 0.625 s > 0.5 s; at 0.5 s it still was not lost
            break
    else:
        pytest.fail("a silent stream was never reported lost")
    assert silent == list(range(5)) and source.inlet is not None  # stalled, still connected
    now["t"] += 0.125
    assert len(source.pull(0.0)[1]) == 0  # reported once, not at every pull
    outlet.push_chunk(np.ones((10, 1), np.float32))
    assert (pull_samples(source, 10) == 1).all()
    del outlet


def test_pusher_stamps_markers_at_their_sample(stream_name):
    sfreq = 100.0

    def read(n, state={"i": 0}):  # noqa: B006 - a tiny counter source
        start = state["i"]
        state["i"] += n
        data = np.arange(start, start + n, dtype=np.float32)[None]
        markers = [(s, f"m{s}") for s in range(start, start + n) if s % 50 == 0]
        return data, markers

    pusher = PacedPusher(read, 1, sfreq, OutletConfig(name=stream_name, source_id=stream_name, chunk=0.1), ["C1"])
    eeg = pylsl.StreamInlet(pylsl.resolve_byprop("name", stream_name, timeout=5)[0])
    mk = pylsl.StreamInlet(pylsl.resolve_byprop("name", f"{stream_name}-markers", timeout=5)[0])
    eeg.open_stream(timeout=5)
    mk.open_stream(timeout=5)
    pusher.start(duration=2.0)
    time.sleep(2.5)
    data, ts = eeg.pull_chunk(timeout=0.5, max_samples=1000)
    values, mts = mk.pull_chunk(timeout=0.5)
    pusher.close()
    by_value = {int(v[0]): t for v, t in zip(data, ts)}
    assert len(values) >= 3
    for (text,), t in zip(values, mts):
        sample = int(text[1:])
        if sample in by_value:
            assert abs(by_value[sample] - t) < 1e-6


def test_clock_correction_only_for_remote_streams(stream_name):
    import socket

    from bci_stream.lsl.clock import ClockCorrection

    info = pylsl.StreamInfo(stream_name, "EEG", 1, 100.0, pylsl.cf_float32, stream_name)
    outlet = pylsl.StreamOutlet(info)
    inlet = pylsl.StreamInlet(pylsl.resolve_byprop("source_id", stream_name, timeout=5)[0])
    inlet.open_stream(timeout=5)
    stamps = np.array([10.0, 10.01])
    local = ClockCorrection(inlet, socket.gethostname())
    assert local.local and local.apply(stamps) is stamps  # same host, same clock: untouched
    remote = ClockCorrection(inlet, "another-host", refresh=0.0)  # a real estimate over loopback
    assert not remote.local and abs(remote.offset) < 0.01
    np.testing.assert_allclose(remote.apply(stamps), stamps + remote.offset)
    del outlet


class JumpyInlet:
    """Offset estimates as a loaded machine gives them: one of them off by 4 ms."""

    def __init__(self):
        self.values = iter([0.0010, 0.0011, 0.0050, 0.0010, 0.0009])

    def time_correction(self, timeout):
        return next(self.values)


def test_clock_correction_takes_the_median_of_recent_estimates():
    from bci_stream.lsl.clock import ClockCorrection

    clock = ClockCorrection(JumpyInlet(), "another-host", refresh=0.0)
    offsets = [clock.update() for _ in range(4)]
    assert max(offsets) < 0.0031  # the 5 ms outlier never becomes the offset
    assert abs(offsets[-1] - 0.0010) < 1e-4


def test_one_shot_resolve_finds_another_process_stream_under_the_loopback_config():
    """The loopback config's fast resolve waves must not break liblsl's one-shot resolve, which lab
    tools (LabRecorder, pylsl.resolve_byprop in a client) and our benchmarks use: with 5-ms minimum
    round trips no process listed another process's EEG stream, with 20 ms two of four processes
    resolving at once did not. Four streams, four processes resolving one each at the same time."""
    import subprocess
    import sys
    import uuid

    names = [f"oneshot-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    sims = [subprocess.Popen([sys.executable, "-m", "bci_stream.cli", "simulate", "--channels", "4", "--name", name,
                              "--duration", "30"], stdout=subprocess.DEVNULL) for name in names]
    code = "import pylsl, sys; print(len(pylsl.resolve_byprop('name', sys.argv[1], timeout=10)))"
    try:
        resolvers = [subprocess.Popen([sys.executable, "-c", code, name], stdout=subprocess.PIPE, text=True)
                     for name in names]
        found = [int(r.communicate(timeout=60)[0].strip() or 0) for r in resolvers]
        assert found == [1, 1, 1, 1]
    finally:
        for sim in sims:
            sim.terminate()
            sim.wait(timeout=10)


@pytest.mark.parametrize("odd", ["O'Brien séance [1]_raw", 'say "hi" to O\'Brien'])
def test_a_stream_name_with_quotes_is_found_by_name_source_id_and_its_markers(odd, stream_name):
    """liblsl queries are XPath 1.0: a name holding ' (or both quotes) is quoted, not a syntax error."""
    from bci_stream.lsl.inlet import StreamFinder
    from bci_stream.lsl.markers import MarkerSource

    name = f"{odd} {stream_name}"
    outlet = _custom_outlet(name, ["O1"])  # its source id is the name too
    marker_info = pylsl.StreamInfo(f"{name}-markers", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, "")
    markers_outlet = pylsl.StreamOutlet(marker_info)
    source = LSLSource(["O1"], 1000.0, SourceConfig(name=name, resolve_timeout=5))
    assert source.connect() and source.info.name() == name
    found = StreamFinder(None, "EEG", source_id=name).wait(5)  # how a lost stream is looked for again
    assert [f.source_id() for f in found] == [name]
    markers = MarkerSource(None, eeg=source.info)
    assert markers.connect(timeout=5) and markers.info.name() == f"{name}-markers"
    markers.close()
    source.close()
    del outlet, markers_outlet
