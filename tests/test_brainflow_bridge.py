"""BrainFlow boards as sources: BrainFlow's synthetic board (a real third-party source) through
``bci-stream bridge brainflow`` into LSL, its stream description, its markers, and live decoding; and
the predictions outlet's and input stream's desc conventions."""

from __future__ import annotations

import json
import logging
import threading

import numpy as np
import pylsl
import pytest
from conftest import unique_name

pytest.importorskip("brainflow")

from bci_stream.contract.trials import Trials  # noqa: E402
from bci_stream.live.decoder import Decoder  # noqa: E402
from bci_stream.live.session import LiveConfig, LiveSession  # noqa: E402
from bci_stream.sources.brainflow import BrainFlowBridge, BrainFlowConfig, board_id, board_names  # noqa: E402


def channels_of(info: pylsl.StreamInfo) -> list[tuple[str, str, str]]:
    ch, out = info.desc().child("channels").child("channel"), []
    while not ch.empty():
        out.append((ch.child_value("label"), ch.child_value("unit"), ch.child_value("type")))
        ch = ch.next_sibling()
    return out


def full_info(name: str) -> pylsl.StreamInfo:
    inlet = pylsl.StreamInlet(pylsl.resolve_byprop("name", name, timeout=5)[0])
    return inlet.info(timeout=5)


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory):
    """A tiny student trained on 0.5-s epochs of BrainFlow's synthetic board (its 16 electrodes at 250 Hz,
    µV), exported with its card: a model that fits the bridged stream."""
    from offline_training.experiments.pipeline import for_data
    from offline_training.training.config import TrainConfig
    from offline_training.training.export import export_onnx
    from offline_training.training.fit import fit

    bridge = BrainFlowBridge(BrainFlowConfig(name=unique_name("bf-train")))
    bridge.board.prepare_session()
    bridge.board.start_stream()
    try:
        threading.Event().wait(3.0)
        data = bridge.board.get_board_data()
    finally:
        bridge.board.stop_stream()
        bridge.board.release_session()
    eeg = data[bridge._eeg_rows].astype(np.float32)
    n = eeg.shape[1] // 125
    trials = Trials(eeg=np.stack([eeg[:, i * 125 : (i + 1) * 125] for i in range(n)]), labels=np.arange(n) % 2,
                    image_ids=np.array([f"t{i}" for i in range(n)]), subjects=np.ones(n), runs=np.zeros(n),
                    sfreq=bridge.sfreq, ch_names=bridge.labels, class_ids=["1", "2"], class_names=["one", "two"],
                    source="brainflow:synthetic", unit="uV")
    config = for_data(TrainConfig(epochs=1, kd=False, seed=0, threads=1), trials)
    idx = np.arange(n)
    run = tmp_path_factory.mktemp("bf-run")
    fitted = fit(trials, {"train": idx[: n - 4], "val": idx[n - 4 :], "test": idx[n - 4 :]}, config, run, progress=False)
    (run / "run.json").write_text(json.dumps(fitted.info))  # fit leaves run.json to its caller
    path, _ = export_onnx(run, run / "model.onnx")
    return path


def test_board_names_map_to_brainflow_ids_and_unknown_boards_are_named():
    assert board_id("synthetic") == -1 and board_id("cyton") == 0 and board_id("cyton_daisy") == 2
    assert "muse_2" in board_names() and board_id("-1") == -1
    with pytest.raises(ValueError, match="unknown BrainFlow board 'cytonn'"):
        board_id("cytonn")


def test_the_synthetic_board_is_an_lsl_eeg_stream_with_labels_units_and_its_markers():
    name = unique_name("bf")
    bridge = BrainFlowBridge(BrainFlowConfig(name=name))
    bridge.start()
    try:
        eeg = pylsl.StreamInlet(pylsl.resolve_byprop("name", name, timeout=5)[0])
        info = eeg.info(timeout=5)
        assert info.type() == "EEG" and info.nominal_srate() == 250 and info.channel_count() == 16
        assert channels_of(info)[:3] == [("Fz", "microvolts", "EEG"), ("C3", "microvolts", "EEG"), ("Cz", "microvolts", "EEG")]
        assert info.desc().child("acquisition").child_value("manufacturer") == "BrainFlow"
        marks = pylsl.StreamInlet(pylsl.resolve_byprop("name", f"{name}-markers", timeout=5)[0])
        eeg.open_stream(timeout=5)
        marks.open_stream(timeout=5)
        for value in (1, 2, 1):
            threading.Event().wait(0.2)
            bridge.mark(value)
        threading.Event().wait(0.3)
        bridge.pump()
        samples, stamps = eeg.pull_chunk(timeout=2.0, max_samples=4096)
        got = []
        for _ in range(20):
            sample, _ = marks.pull_sample(timeout=0.2)
            if sample is None:
                break
            got.append(sample[0])
    finally:
        bridge.close()
    assert got == ["1", "2", "1"] and bridge.markers_sent == 3
    assert len(samples) > 100 and np.isfinite(samples).all()
    # BrainFlow's Unix stamps moved onto the LSL clock (Unix time is ~1.7e9 s, the LSL clock the uptime)
    assert (np.diff(stamps) > 0).all() and pylsl.local_clock() - 60 < stamps[-1] <= pylsl.local_clock()


def test_brainflows_synthetic_board_decodes_live_through_the_bridge_each_marker_once(synthetic_model, tmp_path):
    name, out = unique_name("bf"), unique_name("pred")
    bridge = BrainFlowBridge(BrainFlowConfig(name=name))
    bridge.start()
    pump = threading.Thread(target=bridge.run, kwargs={"seconds": 6.0})
    pump.start()
    session = LiveSession(Decoder(synthetic_model, providers="cpu"),
                          LiveConfig(stream=name, markers=f"{name}-markers", mode="event", log_path=tmp_path / "bf.jsonl",
                                     outlet_name=out))
    try:
        session.start()
        info = full_info(out)
        runner = threading.Thread(target=session.run, kwargs={"seconds": 4.0})
        runner.start()
        for i in range(6):
            threading.Event().wait(0.5)
            bridge.mark(1 + i % 2)
        runner.join()
    finally:
        bridge.stop_event.set()
        pump.join()
        bridge.close()
    preds = [json.loads(line) for line in (tmp_path / "bf.jsonl").read_text().splitlines()]
    preds = [p for p in preds if "probabilities" in p]
    assert [p["marker"] for p in preds] == ["1", "2", "1", "2", "1", "2"][: len(preds)] and len(preds) >= 4
    for p in preds:
        assert len(p["probabilities"]) == 2 and abs(sum(p["probabilities"]) - 1) < 1e-3
    # the predictions outlet describes its model and channels (XDF conventions)
    model = info.desc().child("model")
    decoder = session.decoder
    assert model.child_value("sha256") == decoder.model_sha256 and len(model.child_value("card_sha256")) == 64
    assert channels_of(info)[0] == ("one", "probability", "Probability")
    assert ("latency_ms", "ms", "Latency") in channels_of(info)
    cls = info.desc().child("classes").child("class")
    assert (cls.child_value("index"), cls.child_value("id"), cls.child_value("name")) == ("0", "1", "one")


def test_the_decoder_warns_when_a_streams_desc_filtering_contradicts_the_card(synthetic_model, caplog):
    from bci_stream.lsl.stream_meta import card_band

    decoder = Decoder(synthetic_model, providers="cpu")
    low, high = card_band(decoder.card)
    info = pylsl.StreamInfo(unique_name("desc"), "EEG", 16, 250, pylsl.cf_float32, unique_name("src"))
    assert decoder.check_stream(info) == []  # says nothing: nothing to contradict
    filt = info.desc().append_child("filtering")
    lp = filt.append_child("lowpass")
    lp.append_child_value("type", "butterworth")
    lp.append_child_value("upper", f"{high / 2:g}")
    notch = filt.append_child("notch")
    notch.append_child_value("center", f"{(low + high) / 2:g}")
    with caplog.at_level(logging.WARNING, logger="bci_stream.live.decoder"):
        found = decoder.check_stream(info)
    assert len(found) == 2 and "low-passed" in found[0] and "notch" in found[1]
    assert sum("desc/filtering" in r.getMessage() for r in caplog.records) == 2
