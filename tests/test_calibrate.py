"""A personal decoder in one sitting, small: the listening phantom watches the presenter (a child
process, offscreen), LabRecorder records, bci-train trains in a child process, the new model is
hot-swapped into the running decoder with no sample lost, and the next stimuli are scored live."""

from __future__ import annotations

import json

import pytest
from conftest import unique_name
from stimulus_images import make_image_folder

from bci_stream.io.xdf import read_xdf
from bci_stream.recording.calibrate import CalibrateConfig, calibrate
from bci_stream.sources.listen import listening_pusher
from bci_stream.sources.phantom import Phantom
from bci_stream.sources.simulate import OutletConfig


@pytest.mark.slow  # a whole sitting (present, record, train, hot-swap, test): ~1.5 min on 2 loaded cores; `make test` runs it
def test_calibrate_records_trains_and_hot_swaps_a_personal_decoder(tmp_path, tiny_model, tiny_phantom_config):
    phantom = Phantom(tiny_phantom_config)
    images = make_image_folder(tmp_path / "images", list(phantom.class_ids), per_class=4)
    eeg, stim = unique_name("eeg"), unique_name("stim")
    pusher = listening_pusher(tiny_phantom_config, OutletConfig(name=eeg, source_id=eeg, counter=True), stim).start()
    try:
        result = calibrate(CalibrateConfig(
            images=images, out=tmp_path / "calib", trials=40, test_trials=20, model=str(tiny_model), stream=eeg,
            markers_name=stim, present_args=("--fixation", "0", "--duration", "0.15", "--isi", "0.1",
                                             "--isi-jitter", "0.02"),
            train_args=("--epochs", "3", "--no-controls", "--no-baselines", "--threads", "1")), say=print)
    finally:
        pusher.close()
    # the recording holds the EEG, the 40 calibration markers, the first model's predictions, clock offsets
    rec = read_xdf(result.xdf)
    assert rec.ch_names == list(phantom.ch_names)
    assert len(rec.events) == 40
    # the phantom followed the presenter: every marker the recorder has, the phantom's listener got
    assert pusher.listener.received >= 60
    assert result.swapped and result.lost_samples == 0
    assert result.live["n"] == 20
    assert 0 <= result.offline["top1_ci"][0] <= result.offline["top1"] <= result.offline["top1_ci"][1]
    records = [json.loads(line) for line in (tmp_path / "calib" / "session.jsonl").read_text().splitlines()]
    swaps = [r for r in records if r.get("event") == "model_swapped"]
    assert len(swaps) == 1 and swaps[0]["new"]["path"].endswith("model.onnx") and swaps[0]["lost_samples"] == 0
    assert json.loads((tmp_path / "calib" / "calibration.json").read_text())["live"]["n"] == 20
