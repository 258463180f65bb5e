"""The train -> live contract on real LSL streams over loopback: units, preprocessing, markers,
stream choice, distinguishable outlets, replay timing."""

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pylsl
import pytest
from conftest import pull_samples, unique_name

from bci_stream.contract.preprocessing import (
    FilterDesign,
    Preprocessing,
    preprocess_continuous,
    preprocess_epochs,
)
from bci_stream.io import Recording
from bci_stream.live.decoder import Decoder
from bci_stream.live.session import LiveConfig, LiveSession
from bci_stream.lsl.inlet import LSLSource, SourceConfig, StreamMismatchError
from bci_stream.sources.phantom import Phantom
from bci_stream.sources.replay import RecordingReader, recording_pusher
from bci_stream.sources.simulate import OutletConfig, PacedPusher

BANDPASS = Preprocessing(filters=(FilterDesign("bandpass", (1.0, 40.0)),), reference="average")


@pytest.fixture(scope="module")
def bandpass_model(tmp_path_factory, tiny_phantom_config):
    """A tiny student trained on band-passed, average-referenced phantom trials, exported with its card."""
    from offline_training.experiments.pipeline import train_and_test
    from offline_training.training.export import export_onnx
    from offline_training.training.fit import TrainConfig

    trials = Phantom(tiny_phantom_config).trials()
    trials.eeg = preprocess_epochs(BANDPASS, trials.eeg, trials.ch_names, trials.sfreq)
    trials.preprocessing = BANDPASS.to_dict()
    run = tmp_path_factory.mktemp("bandpass-run")
    train_and_test(trials, "by-image", TrainConfig(student="seed", epochs=2, seed=0), run, trials.soft_labels, "phantom", progress=False)
    path, _ = export_onnx(run, run / "model.onnx")
    return path


def phantom_recording(config, seconds=7.0, session_seed=11) -> Recording:
    """A continuous phantom recording (a stimulus every 0.5 s from 1 s on) held in memory."""
    phantom = Phantom(config)
    stream = phantom.new_stream(subject=1, seed=session_seed)
    data, markers = stream.read(int(seconds * config.sfreq))
    return Recording(data=data, sfreq=config.sfreq, ch_names=list(phantom.ch_names),
                     events=[(s, text) for s, text, _ in markers], unit="uV", source="phantom")


def run_session(session, pusher, seconds):
    """Start the session on the (not yet pushing) stream, then push and decode for ``seconds``."""
    session.start()
    runner = threading.Thread(target=session.run, kwargs={"seconds": seconds})
    runner.start()
    pusher.start()
    runner.join()
    pusher.close()


def test_card_carries_preprocessing_and_info_shows_it(bandpass_model, capsys):
    from bci_stream.cli import main
    from bci_stream.contract.model_card import ModelCard

    card = ModelCard.from_onnx(bandpass_model)
    assert card.format_version == 2 and card.signal_unit == "uV"
    assert card.preprocessing_spec() == BANDPASS and len(card.preprocessing["filters"][0]["sos"]) == 4
    assert main(["info", str(bandpass_model)]) == 0
    assert "average reference; bandpass 1-40 Hz (order 4)" in capsys.readouterr().out


def test_band_passed_model_gets_band_passed_input_live_like_the_offline_path(bandpass_model, tiny_phantom_config,
                                                                             stream_name):
    """Replay a recording at 4x into event mode; each decision's features equal the offline path's:
    the whole recording preprocessed causally, epoched at the marker, then the decoder's features."""
    rec = phantom_recording(tiny_phantom_config)
    decoder = Decoder(bandpass_model, providers="cpu")
    live_features = []  # in stimulus order (an image can be shown twice)
    listener = lambda p: live_features.append((p.marker, decoder.last_features.copy()))  # noqa: E731
    session = LiveSession(decoder, LiveConfig(stream=stream_name, mode="event"), listeners=[listener])
    pusher = recording_pusher(rec, OutletConfig(name=stream_name, source_id=stream_name), speed=4.0)
    card = decoder.card
    complete = [(s, t) for s, t in rec.events if s + card.offset_samples + card.window_samples <= rec.n_times]
    session.start()
    runner = threading.Thread(target=session.run, kwargs={"seconds": rec.duration / 4 + 20.0})
    runner.start()
    pusher.start()
    deadline = time.monotonic() + rec.duration / 4 + 20.0
    while len(live_features) < len(complete) and time.monotonic() < deadline:
        time.sleep(0.05)
    session.stop()
    runner.join()
    pusher.close()

    clean = preprocess_continuous(card.preprocessing_spec(), rec.data, rec.ch_names, rec.sfreq)
    assert [m for m, _ in live_features] == [t for _, t in complete] and len(complete) >= 10, \
        f"lost samples {session.source.lost_samples}, withheld {session.state.n_withheld}"
    worst = 0.0
    for (sample, _), (_, live) in zip(complete, live_features):
        start = sample + card.offset_samples
        offline = decoder.features(clean[:, start : start + card.window_samples].copy())
        worst = max(worst, float(np.abs(offline - live).max()))
    assert worst <= 1e-5, f"live features differ from the offline path by {worst:.2e}"


def volts_pusher(rec, name, unit):
    """The recording streamed in volts, the channels declaring ``unit``."""
    volts = replace(rec, data=rec.data * 1e-6)
    reader = RecordingReader(volts)
    return PacedPusher(reader.read, len(rec.ch_names), rec.sfreq, OutletConfig(name=name, source_id=name),
                       rec.ch_names, speed=4.0, unit=unit)


def event_probabilities(model, pusher, name, rec, **config):
    decoder = Decoder(model, providers="cpu")
    got = {}
    session = LiveSession(decoder, LiveConfig(stream=name, mode="event", **config),
                          listeners=[lambda p: got.setdefault(p.marker, p.probabilities.copy())])
    run_session(session, pusher, seconds=rec.duration / 4 + 1.0)
    return got, session


def test_volts_stream_is_converted_and_decodes_like_the_microvolt_stream(tiny_model, tiny_phantom_config):
    rec = phantom_recording(tiny_phantom_config)
    uv_name, v_name, code_name = unique_name("uv"), unique_name("volts"), unique_name("mnelsl")
    in_uv, _ = event_probabilities(tiny_model, recording_pusher(rec, OutletConfig(name=uv_name, source_id=uv_name),
                                                                speed=4.0), uv_name, rec)
    in_v, session = event_probabilities(tiny_model, volts_pusher(rec, v_name, "V"), v_name, rec)
    assert session.source.unit_note == "V -> uV (x 1e+06)"
    assert set(in_v) == set(in_uv) and len(in_uv) >= 10
    for marker, probs in in_uv.items():
        np.testing.assert_allclose(in_v[marker], probs, atol=1e-4)
    # mne-lsl's PlayerLSL writes the unit as a power of ten of volts: "0" is volts
    in_code, _ = event_probabilities(tiny_model, volts_pusher(rec, code_name, "0"), code_name, rec)
    assert set(in_code) == set(in_uv)


def test_stream_without_a_unit_is_refused_unless_the_unit_is_assumed(stream_name):
    info = pylsl.StreamInfo(stream_name, "EEG", 2, 1000.0, pylsl.cf_float32, stream_name)
    channels = info.desc().append_child("channels")
    for label in ("O1", "O2"):
        channels.append_child("channel").append_child_value("label", label)
    outlet = pylsl.StreamOutlet(info)
    with pytest.raises(StreamMismatchError, match="declares no unit.*--assume-unit"):
        LSLSource(["O1", "O2"], 1000.0, SourceConfig(name=stream_name, resolve_timeout=5)).connect()
    source = LSLSource(["O1", "O2"], 1000.0, SourceConfig(name=stream_name, resolve_timeout=5, assume_unit="mV"))
    assert source.connect() and source.unit_note == "mV -> uV (x 1000)"
    outlet.push_chunk(np.ones((20, 2), np.float32))
    got = pull_samples(source, 20)
    np.testing.assert_allclose(got[:20], 1000.0)
    source.close()
    # arbitrary units match only a model trained on arbitrary units
    with pytest.raises(StreamMismatchError, match="a.u. cannot be converted to uV"):
        LSLSource(["O1", "O2"], 1000.0, SourceConfig(name=stream_name, resolve_timeout=5, assume_unit="a.u.")).connect()
    del outlet


def test_a_model_in_arbitrary_units_is_advised_the_only_unit_that_works(stream_name, tiny_model, tmp_path, capsys):
    """A model trained on standardised data (a.u.): a stream without a unit, or in microvolts, is
    refused with advice naming --assume-unit a.u. (not V/mV/uV/nV, which cannot convert), which then
    works; ``info`` says the same."""
    from bci_stream.cli import main as bci_stream
    from bci_stream.contract.model_card import ModelCard

    for declared in (None, "microvolts"):
        name = f"{stream_name}-{declared}"
        info = pylsl.StreamInfo(name, "EEG", 2, 1000.0, pylsl.cf_float32, name)
        channels = info.desc().append_child("channels")
        for label in ("O1", "O2"):
            ch = channels.append_child("channel")
            ch.append_child_value("label", label)
            if declared:
                ch.append_child_value("unit", declared)
        outlet = pylsl.StreamOutlet(info)  # noqa: F841 - on the network while the source looks
        with pytest.raises(StreamMismatchError) as refused:
            LSLSource(["O1", "O2"], 1000.0, SourceConfig(name=name, resolve_timeout=5, unit="a.u.")).connect()
        message = str(refused.value)
        assert "--assume-unit a.u." in message and "(V, mV, uV, nV)" not in message, message
        source = LSLSource(["O1", "O2"], 1000.0, SourceConfig(name=name, resolve_timeout=5, unit="a.u.",
                                                             assume_unit="a.u."))
        assert source.connect() and source.unit_note == "a.u. -> a.u."
        source.close()
        del outlet
    model = tmp_path / "au.onnx"
    model.write_bytes(Path(tiny_model).read_bytes())
    replace(ModelCard.from_onnx(model), signal_unit="a.u.").save_into_onnx(model)
    assert bci_stream(["info", str(model)]) == 0
    shown = json.loads(capsys.readouterr().out)["stream must be"]
    assert "--assume-unit a.u." in shown and "are converted" not in shown, shown


@pytest.mark.parametrize("fmt, dtype", [(pylsl.cf_int8, np.int8), (pylsl.cf_int16, np.int16),
                                        (pylsl.cf_int32, np.int32), (pylsl.cf_int64, np.int64)])
def test_integer_streams_are_read(stream_name, fmt, dtype):
    info = pylsl.StreamInfo(stream_name, "EEG", 2, 1000.0, fmt, stream_name)
    channels = info.desc().append_child("channels")
    for label in ("O1", "O2"):
        ch = channels.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", "uV")
    outlet = pylsl.StreamOutlet(info)
    source = LSLSource(["O2", "O1"], 1000.0, SourceConfig(name=stream_name, resolve_timeout=5))
    assert source.connect()
    block = np.stack([np.arange(30), -np.arange(30)], axis=1).astype(dtype)
    time.sleep(0.2)
    outlet.push_chunk(block)
    got = pull_samples(source, 30)
    np.testing.assert_array_equal(got, block[:, ::-1].astype(np.float32))
    source.close()
    del outlet


def test_ood_monitor_flags_a_volts_stream_read_as_microvolts_within_a_second(tiny_model, tiny_phantom_config):
    rec = phantom_recording(tiny_phantom_config, seconds=4.0)
    right, wrong = unique_name("right"), unique_name("mislabelled")
    decoder = Decoder(tiny_model, providers="cpu")
    session = LiveSession(decoder, LiveConfig(stream=right))
    run_session(session, recording_pusher(rec, OutletConfig(name=right, source_id=right)), seconds=1.5)
    assert session.state.n_decisions > 20 and session.state.ood_warning == ""
    assert abs(session.state.ood_bias) < 0.5 and 0.5 < session.state.ood_rms < 2.0

    decoder = Decoder(tiny_model, providers="cpu")
    flagged_at = []

    def watch(p):
        if not flagged_at and decoder.ood.warning:
            flagged_at.append(p.t_lsl)

    session = LiveSession(decoder, LiveConfig(stream=wrong), listeners=[watch])
    pusher = volts_pusher(rec, wrong, "uV")  # volts, but the driver says microvolts
    pusher.speed = 1.0
    t0 = pylsl.local_clock()
    run_session(session, pusher, seconds=1.5)
    assert flagged_at and flagged_at[0] - t0 < 1.0, "the volts-as-microvolts stream was not flagged within 1 s"
    assert "volts vs microvolts" in session.state.ood_warning


def test_event_mode_picks_the_eeg_streams_own_markers_among_others_and_says_so(tiny_model, tiny_phantom_config,
                                                                                stream_name):
    foreign = pylsl.StreamOutlet(pylsl.StreamInfo(unique_name("Hello"), "Markers", 1, 0, pylsl.cf_string, ""))  # noqa: F841
    rec = phantom_recording(tiny_phantom_config, seconds=3.0)
    decoder = Decoder(tiny_model, providers="cpu")
    session = LiveSession(decoder, LiveConfig(stream=stream_name, mode="event"))
    run_session(session, recording_pusher(rec, OutletConfig(name=stream_name, source_id=stream_name)), seconds=3.0)
    described = session.describe()["markers"]
    assert described["name"] == f"{stream_name}-markers" and "named after the EEG stream" in described["why"]
    assert session.state.n_decisions >= 3


def test_ambiguous_marker_streams_are_an_error_that_lists_them(tiny_model, stream_name):
    from bci_stream.lsl.markers import MarkerStreamError

    outlets = [pylsl.StreamOutlet(pylsl.StreamInfo(unique_name(n), "Markers", 1, 0, pylsl.cf_string, ""))
               for n in ("PsychoPy", "Presentation")]
    eeg = pylsl.StreamInfo(stream_name, "EEG", 1, 1000.0, pylsl.cf_float32, "")
    from bci_stream.lsl.inlet import find_streams
    from bci_stream.lsl.markers import choose_marker_stream

    names = {o.get_info().name() for o in outlets}
    deadline = time.monotonic() + 10
    candidates = []
    while len(candidates) < 2 and time.monotonic() < deadline:
        candidates = [c for c in find_streams(None, "Markers", 5, gather=0.5) if c.name() in names]
    assert len(candidates) == 2
    with pytest.raises(MarkerStreamError, match="pass --markers NAME"):
        choose_marker_stream(candidates, eeg)
    chosen, why = choose_marker_stream(candidates, eeg, name=outlets[1].get_info().name())
    assert chosen.name() == outlets[1].get_info().name() and why == "named with --markers"


def test_restarted_marker_outlet_is_reconnected_and_decisions_resume_within_2_s(tiny_model, tiny_phantom_config,
                                                                               stream_name):
    """A PsychoPy-style marker outlet (no source id) stops and a new one starts under the same name."""
    phantom = Phantom(tiny_phantom_config)
    stream = phantom.new_stream(subject=1, seed=5)
    pusher = PacedPusher(lambda n: (stream.read(n)[0], []), tiny_phantom_config.n_channels, 1000.0,
                         OutletConfig(name=unique_name("eeg-nomarkers"), source_id=stream_name), phantom.ch_names)
    marker_name = unique_name("psychopy")
    holder = {"outlet": pylsl.StreamOutlet(pylsl.StreamInfo(marker_name, "Markers", 1, 0, pylsl.cf_string, ""))}
    decoder = Decoder(tiny_model, providers="cpu")
    decided = []
    session = LiveSession(decoder, LiveConfig(stream=pusher.config.name, markers=marker_name, mode="event"),
                          listeners=[lambda p: decided.append((pylsl.local_clock(), p.marker))])
    session.start()
    runner = threading.Thread(target=session.run, kwargs={"seconds": 7.0})
    runner.start()
    pusher.start()
    try:
        for i in range(4):
            time.sleep(0.3)
            holder["outlet"].push_sample([f"before-{i}"], pylsl.local_clock() - 0.05)
        time.sleep(0.6)
        holder.clear()  # the sender quits ...
        time.sleep(0.5)
        holder["outlet"] = pylsl.StreamOutlet(pylsl.StreamInfo(marker_name, "Markers", 1, 0, pylsl.cf_string, ""))
        t_restart = pylsl.local_clock()  # ... and starts again
        for i in range(12):
            time.sleep(0.25)
            holder["outlet"].push_sample([f"after-{i}"], pylsl.local_clock() - 0.05)
        runner.join()
    finally:
        session.stop()
        pusher.close()
    before = [m for _, m in decided if m.startswith("before")]
    after = [(t, m) for t, m in decided if m.startswith("after")]
    assert len(before) == 4 and after, "no decisions after the marker sender restarted"
    assert after[0][0] - t_restart < 2.0
    assert session.state.marker_status == "connected"


def test_two_sessions_publish_distinguishable_outlets(tiny_model, bandpass_model, tiny_phantom_config, stream_name):
    rec = phantom_recording(tiny_phantom_config, seconds=3.0)
    sessions = [LiveSession(Decoder(m, providers="cpu"), LiveConfig(stream=stream_name))
                for m in (tiny_model, bandpass_model)]
    renamed = LiveSession(Decoder(tiny_model, providers="cpu"), LiveConfig(stream=stream_name, outlet_name="lab-b"))
    pusher = recording_pusher(rec, OutletConfig(name=stream_name, source_id=stream_name))
    for s in (*sessions, renamed):
        s.start()
    ids = [s.outlet.source_id for s in (*sessions, renamed)]
    assert len(set(ids)) == 3 and all(stream_name not in i or "@" in i for i in ids)
    found = {c.source_id() for c in pylsl.resolve_byprop("type", "Predictions", minimum=3, timeout=5)}
    assert set(ids) <= found
    assert renamed.outlet.outlet.get_info().name() == "lab-b"
    described = sessions[0].describe()
    assert described["model"]["sha256"] != sessions[1].describe()["model"]["sha256"]
    assert described["stream"]["source_id"] == stream_name and described["stream"]["sfreq"] == 1000.0
    for s in (*sessions, renamed):
        s.close()
    pusher.close()


def test_two_decoders_of_one_stream_and_model_publish_one_name_and_two_source_ids(tiny_model, tiny_phantom_config,
                                                                                   stream_name):
    """Two sessions on the same stream with the same model: the outlet name is the documented one,
    the source ids differ (the README: two decoders never share one), and LSL lists both."""
    rec = phantom_recording(tiny_phantom_config, seconds=2.0)
    outlet_name = unique_name("preds")
    sessions = [LiveSession(Decoder(tiny_model, providers="cpu"), LiveConfig(stream=stream_name, outlet_name=outlet_name))
                for _ in range(2)]
    pusher = recording_pusher(rec, OutletConfig(name=stream_name, source_id=stream_name))
    try:
        for s in sessions:
            s.start()
        ids = [s.outlet.source_id for s in sessions]
        assert ids[0] != ids[1]
        prefix = ids[0].rsplit(":", 1)[0]  # what they decode: the same host, stream, model and name
        assert ids[1].rsplit(":", 1)[0] == prefix and prefix.startswith(f"{outlet_name}@")
        found = pylsl.resolve_byprop("name", outlet_name, minimum=2, timeout=5)
        assert sorted(f.source_id() for f in found) == sorted(ids)
        assert {f.name() for f in found} == {outlet_name}
    finally:
        for s in sessions:
            s.close()
        pusher.close()


def test_replay_at_speed_4_puts_every_marker_on_its_sample(stream_name):
    n = 6000
    data = np.zeros((2, n), np.float32)
    events = [(s, f"m{s}") for s in range(137, n, 311)]
    rec = Recording(data=data, sfreq=1000.0, ch_names=["C3", "C4"], events=events, unit="uV")
    pusher = recording_pusher(rec, OutletConfig(name=stream_name, source_id=stream_name, counter=True, chunk=0.02),
                              speed=4.0)
    eeg = pylsl.StreamInlet(pylsl.resolve_byprop("name", stream_name, timeout=5)[0], max_buflen=60)
    mk = pylsl.StreamInlet(pylsl.resolve_byprop("name", f"{stream_name}-markers", timeout=5)[0])
    eeg.open_stream(timeout=5)
    mk.open_stream(timeout=5)
    pusher.start()
    time.sleep(n / 4000 + 0.8)
    chunks, stamps = [], []
    while True:
        c, ts = eeg.pull_chunk(timeout=0.2, max_samples=100000)
        if not ts:
            break
        chunks += c
        stamps += ts
    values, mts = mk.pull_chunk(timeout=0.5, max_samples=1000)
    pusher.close()
    counter = np.array(chunks)[:, -1].astype(int)
    stamps = np.array(stamps)
    assert len(counter) == n and (np.diff(counter) == 1).all()
    assert (np.diff(stamps) > 0).all(), "EEG stamps go backwards"
    np.testing.assert_allclose(np.median(np.diff(stamps)), 1 / 4000, rtol=0.05)
    assert len(values) == len(events)
    off = [int(counter[np.argmin(np.abs(stamps - t))]) - int(v[0][1:]) for v, t in zip(values, mts)]
    assert off == [0] * len(events), f"markers off by {off} samples"


def test_without_a_stream_name_the_first_stream_that_fits_is_taken_and_the_others_named():
    labels = [unique_name("ch")[:12] for _ in range(2)]

    def outlet(name, sfreq):
        info = pylsl.StreamInfo(name, "EEG", 2, sfreq, pylsl.cf_float32, name)
        chans = info.desc().append_child("channels")
        for label in labels:
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", "microvolts")
        return pylsl.StreamOutlet(info)

    foreign, ours = outlet(unique_name("foreign500"), 500.0), outlet(unique_name("ours"), 1000.0)
    source = LSLSource(labels, 1000.0, SourceConfig(name=None, resolve_timeout=5))
    assert source.connect()
    assert source.info.name() == ours.get_info().name()
    why = dict(source.rejected)[foreign.get_info().name()]
    assert "500 Hz; the model needs 1000 Hz" in why
    source.close()
