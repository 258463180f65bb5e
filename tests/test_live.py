"""The live loop end to end: real LSL streams on loopback, the tiny exported student, real outputs."""

import json
import threading
import time

import numpy as np
import pylsl
import pytest
from conftest import unique_name

from bci_stream.contract.model_card import ModelCardError
from bci_stream.live.decoder import Decoder
from bci_stream.live.session import LiveConfig, LiveSession
from bci_stream.lsl.inlet import StreamLostError
from bci_stream.lsl.outlets import PredictionOutlet
from bci_stream.sources.phantom import Phantom
from bci_stream.sources.simulate import OutletConfig, PacedPusher, phantom_pusher


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def start_phantom(config, name, counter=True, isi=0.5):
    return phantom_pusher(config, OutletConfig(name=name, source_id=name, counter=counter), isi=isi).start()


def test_continuous_decisions_reach_log_and_lsl_outlet(tiny_model, tiny_phantom_config, stream_name, tmp_path):
    pusher = start_phantom(tiny_phantom_config, stream_name)
    out_name = unique_name("pred")
    decoder = Decoder(tiny_model, providers="cpu")
    session = LiveSession(decoder, LiveConfig(stream=stream_name, log_path=tmp_path / "s.jsonl", outlet_name=out_name))
    try:
        session.start()
        pred_info = pylsl.resolve_byprop("name", out_name, timeout=5)[0]
        pred_inlet = pylsl.StreamInlet(pred_info)
        pred_inlet.open_stream(timeout=5)
        pred_full_info = pred_inlet.info(timeout=5)
        runner = threading.Thread(target=session.run, kwargs={"seconds": 2.5})
        runner.start()
        samples, stamps = [], []
        while runner.is_alive():  # read the outlet while it exists
            chunk, ts = pred_inlet.pull_chunk(timeout=0.1, max_samples=1000, min_samples=1)
            samples += chunk
            stamps += ts
        runner.join()
    finally:
        pusher.close()
    records = read_log(tmp_path / "s.jsonl")
    preds = [r for r in records if "probabilities" in r]
    card = decoder.card
    assert records[0]["event"] == "session_start" and records[-1]["event"] == "session_end"
    assert 40 < len(preds) <= 2.5 / 0.02 + 2
    ends = np.array([p["window_end_sample"] for p in preds])
    assert (np.diff(ends) == 20).all()  # one decision per 20 ms hop, none skipped
    for p in preds:
        assert set(p) >= {"t_lsl", "t_emitted", "window_end_sample", "latency_ms", "top5", "probabilities"}
        assert len(p["probabilities"]) == card.n_classes and abs(sum(p["probabilities"]) - 1) < 1e-3
        assert p["top5"][0] == int(np.argmax(p["probabilities"]))
        assert p["t_emitted"] > p["t_lsl"] and p["latency_ms"] > 0
    # the LSL outlet carries the same decisions: class channels then the extras, stamped t_lsl
    labels = pred_full_info.desc().child("channels").first_child()
    names = []
    while not labels.empty():
        names.append(labels.child_value("label"))
        labels = labels.next_sibling()
    assert names == card.class_names + PredictionOutlet.EXTRA
    assert len(samples) >= len(preds) - 5
    by_end = {p["window_end_sample"]: p for p in preds}
    s = samples[-1]
    match = by_end[int(s[card.n_classes + 5])]
    np.testing.assert_allclose(s[: card.n_classes], match["probabilities"], atol=1e-5)
    assert abs(stamps[-1] - match["t_lsl"]) < 1e-6
    assert session.state.lost_samples == 0


def test_event_locked_mode_classifies_each_stimulus_once(tiny_model, tiny_phantom_config, stream_name, tmp_path):
    pusher = start_phantom(tiny_phantom_config, stream_name, isi=0.3)
    session = LiveSession(Decoder(tiny_model, providers="cpu"),
                          LiveConfig(stream=stream_name, markers=f"{stream_name}-markers", mode="event",
                                     log_path=tmp_path / "e.jsonl"))
    try:
        session.run(seconds=3.0)
    finally:
        pusher.close()
    preds = [r for r in read_log(tmp_path / "e.jsonl") if "probabilities" in r]
    markers = [p["marker"] for p in preds]
    assert len(markers) >= 5
    assert all(m.split("_")[0].startswith("n") for m in markers)
    ends = np.diff([p["window_end_sample"] for p in preds])
    assert (ends == 300).all()  # one epoch per stimulus, 0.3 s apart
    assert session.state.n_decisions == len(preds)


class FaultySource:
    """Phantom data with NaNs on channel 0 during 1.0-1.5 s and a flat channel 3 during 2.5-3.0 s."""

    def __init__(self, config):
        self.stream = Phantom(config).new_stream()
        self.sfreq = config.sfreq
        self.t = 0

    def read(self, n):
        data, markers = self.stream.read(n)
        idx = self.t + np.arange(n)
        data[0, (idx >= 1000) & (idx < 1500)] = np.nan
        data[3, (idx >= 2500) & (idx < 3000)] = 7.0
        self.t += n
        return data, [(s, text) for s, text, _ in markers]


def test_nan_and_flat_windows_are_withheld_not_fatal(tiny_model, tiny_phantom_config, stream_name, tmp_path):
    faulty = FaultySource(tiny_phantom_config)
    names = Phantom(tiny_phantom_config).ch_names
    pusher = PacedPusher(faulty.read, len(names), 1000.0, OutletConfig(name=stream_name, source_id=stream_name),
                         names).start()
    session = LiveSession(Decoder(tiny_model, providers="cpu"), LiveConfig(stream=stream_name, log_path=tmp_path / "f.jsonl"))
    try:
        session.run(seconds=4.5)
    finally:
        pusher.close()
    records = read_log(tmp_path / "f.jsonl")
    withheld = [r for r in records if r.get("event") == "withheld"]
    reasons = {r["reason"].split(" on ")[0] for r in withheld}
    assert reasons == {"non-finite samples (NaN/Inf)", "flat-lined signal"}
    assert any(names[0] in r["reason"] for r in withheld) and any(names[3] in r["reason"] for r in withheld)
    preds = [r for r in records if "probabilities" in r]
    assert all(np.isfinite(p["probabilities"]).all() for p in preds)
    withheld_ends = {r["window_end_sample"] for r in withheld}
    assert not withheld_ends & {p["window_end_sample"] for p in preds}
    assert max(p["window_end_sample"] for p in preds) > 3500  # decoding resumed after both faults


def test_stream_loss_is_reported_and_reconnects(tiny_model, tiny_phantom_config, stream_name, tmp_path):
    first = start_phantom(tiny_phantom_config, stream_name)
    session = LiveSession(Decoder(tiny_model, providers="cpu"),
                          LiveConfig(stream=stream_name, log_path=tmp_path / "r.jsonl", lost_after=0.5))
    session.start()
    runner = threading.Thread(target=session.run, kwargs={"seconds": 6.0})
    runner.start()
    time.sleep(1.5)
    first.close()  # the amplifier goes away ...
    time.sleep(1.5)
    second = start_phantom(tiny_phantom_config, stream_name)  # ... and comes back
    runner.join(timeout=20)
    second.close()
    records = read_log(tmp_path / "r.jsonl")
    kinds = [r.get("event") for r in records]
    assert "stream_lost" in kinds and "stream_restored" in kinds, records[-3:]
    lost_at = kinds.index("stream_lost")
    restored = records[kinds.index("stream_restored")]
    assert 1.0 < restored["seconds_down"] < 6.0  # at least the 1.5 s it was away, at most the run (tests never time)
    after = [r for r in records[kinds.index("stream_restored"):] if "probabilities" in r]
    assert len(after) > 10, "decoding resumed after the stream came back"
    assert any("probabilities" in r for r in records[:lost_at])
    assert session.state.gaps and session.state.stream_status == "stopped"


def test_model_without_card_and_absent_stream_fail_clearly(tmp_path, tiny_model):
    import onnx

    bare = onnx.load(str(tiny_model))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelCardError, match="no bci-stream model card"):
        Decoder(tmp_path / "bare.onnx", providers="cpu")
    session = LiveSession(Decoder(tiny_model, providers="cpu"),
                          LiveConfig(stream=unique_name("absent"), resolve_timeout=0.5))
    with pytest.raises(StreamLostError, match="no LSL stream named"):
        session.start()


def test_decoder_matches_offline_features_and_model(tiny_model, tiny_phantom_config):
    """Parity: the live decoder on a raw window == the trainer's pipeline on the same samples."""
    import json as _json
    from pathlib import Path

    from offline_training.training.fit import load_model, model_inputs, predict

    run = Path(tiny_model).parent
    trials = Phantom(tiny_phantom_config).trials(subjects=[1])
    model, normaliser, config, _ = load_model(run)
    offline = predict(model, normaliser(model_inputs(trials.subset(np.arange(8)), config)).astype(np.float32))
    decoder = Decoder(tiny_model, providers="cpu")
    live = np.stack([decoder.classify(trials.eeg[i, :, config.crop_start : config.crop_stop]) for i in range(8)])
    np.testing.assert_allclose(live, offline, atol=1e-5)
    assert decoder.card.window_offset == pytest.approx(0.02) and decoder.card.window_samples == 440
    assert _json.loads(decoder.card.to_json())["split"] == "by-image"
