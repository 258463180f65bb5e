"""Recording beside the decoder with the real LabRecorder: what `live --record` writes reads back with
pyxdf (EEG, markers, predictions, clock offsets), epochs for bci-train, exports to BIDS; a killed
recorder or a nearly full disk is reported and decoding goes on."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pylsl
import pytest
import pyxdf
from conftest import unique_name

from bci_stream.cli import main
from bci_stream.live.config import LiveConfig
from bci_stream.live.decoder import Decoder
from bci_stream.live.session import LiveSession
from bci_stream.recording.labrecorder import RecordConfig, Recorder, attach_recorder
from bci_stream.sources.simulate import OutletConfig, phantom_pusher

pytest.importorskip("labrecorder")


def _pusher(config, name, counter=True):
    return phantom_pusher(config, OutletConfig(name=name, source_id=name, counter=counter), isi=0.3).start()


def test_live_record_holds_eeg_markers_predictions_and_clock_offsets(tiny_model, tiny_phantom_config, stream_name,
                                                                      tmp_path, capsys):
    from bci_stream.recording.bids import export_bids
    from offline_training.datasets import load_trials

    pusher = _pusher(tiny_phantom_config, stream_name)
    try:
        code = main(["live", "--model", str(tiny_model), "--headless", "--stream", stream_name, "--mode", "event",
                     "--markers", f"{stream_name}-markers", "--seconds", "7", "--providers", "cpu",
                     "--outlet-name", unique_name("pred"), "--record", str(tmp_path / "rec"),
                     "--log", str(tmp_path / "s.jsonl")])
    finally:
        pusher.close()
    assert code == 0
    files = list((tmp_path / "rec").glob("*.xdf"))
    assert len(files) == 1 and "recorded" in capsys.readouterr().out
    streams, _ = pyxdf.load_xdf(str(files[0]))
    by_type = {s["info"]["type"][0]: s for s in streams}
    assert set(by_type) == {"EEG", "Markers", "Predictions"}
    eeg = by_type["EEG"]
    counter = np.asarray(eeg["time_series"])[:, -1]
    assert len(counter) > 5 * tiny_phantom_config.sfreq and np.all(np.diff(counter) == 1)  # every sample, in order
    assert len(by_type["Markers"]["time_series"]) >= 15
    assert len(by_type["Predictions"]["time_series"]) >= 10  # the decoder's event-mode decisions
    assert all(len(s["clock_times"]) >= 1 for s in streams)  # LabRecorder's clock offsets
    trials = load_trials(f"xdf:{files[0]},tmin=0,tmax=0.5", progress=False)  # what bci-train --data reads
    assert len(trials.labels) >= 10 and "SAMPLE_INDEX" not in trials.ch_names
    records = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "recording_started" for r in records)
    # BIDS: BrainVision with events and channels, the decisions as a derivative; mne-bids reads it back
    import mne_bids

    root = tmp_path / "bids"
    vhdr = export_bids(files[0], root, subject="01", task="images")
    raw = mne_bids.read_raw_bids(mne_bids.BIDSPath(subject="01", task="images", datatype="eeg", root=root),
                                 verbose="error")
    assert vhdr.suffix == ".vhdr" and raw.info["sfreq"] == tiny_phantom_config.sfreq
    from bci_stream.io.xdf import read_xdf

    assert len(raw.annotations) == len(read_xdf(files[0]).events)  # the markers within the EEG's span
    assert (root / "sub-01" / "eeg" / "sub-01_task-images_channels.tsv").is_file()
    assert (root / "sub-01" / "eeg" / "sub-01_task-images_events.tsv").is_file()
    decisions = list((root / "derivatives" / "bci-stream").rglob("*_desc-decisions_eeg.tsv"))
    assert len(decisions) == 1 and len(decisions[0].read_text().splitlines()) == 1 + len(by_type["Predictions"]["time_series"])


def _run_session(session):
    thread = threading.Thread(target=session.run, daemon=True)
    thread.start()
    return thread


def test_a_killed_recorder_is_reported_and_decoding_goes_on(tiny_model, tiny_phantom_config, stream_name, tmp_path):
    pusher = _pusher(tiny_phantom_config, stream_name)
    session = LiveSession(Decoder(tiny_model, providers="cpu"),
                          LiveConfig(stream=stream_name, log_path=tmp_path / "k.jsonl", outlet_name=unique_name("pred")))
    try:
        session.start()
        recorder = attach_recorder(session, tmp_path / "rec", RecordConfig(check_every=0.1))
        thread = _run_session(session)
        time.sleep(1.0)
        recorder._proc.kill()  # as `kill -9` would
        for _ in range(50):
            if recorder.error:
                break
            time.sleep(0.1)
        before = session.state.n_decisions
        time.sleep(1.0)
        assert session.state.n_decisions > before + 10  # still decoding
        assert "recorder process ended (killed by signal 9" in recorder.error
        assert session.state.recording["error"] == recorder.error and not session.state.recording["running"]
        session.stop()
        thread.join(timeout=10)
    finally:
        pusher.close()
    records = [json.loads(x) for x in (tmp_path / "k.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records if r.get("event", "").startswith("recording")] == \
        ["recording_started", "recording_failed"]


def test_a_nearly_full_disk_stops_the_recording_with_its_footers(tmp_path):
    name = unique_name("eeg")
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 2, 100, pylsl.cf_float32, name))
    errors = []
    recorder = Recorder(tmp_path / "full.xdf", [name], RecordConfig(min_free_mb=1e12, check_every=0.1),
                        on_error=errors.append).start()
    for i in range(50):
        outlet.push_sample([i, -i])
        time.sleep(0.01)
    assert "disk nearly full" in recorder.check() and errors == [recorder.error]
    status = recorder.stop()
    assert not status.running and status.error == errors[0]
    streams, _ = pyxdf.load_xdf(str(tmp_path / "full.xdf"))
    assert "footer" in streams[0] and len(streams[0]["time_series"]) > 0  # closed cleanly, readable


def test_bci_stream_record_writes_the_named_streams_until_its_time_is_up(tmp_path, capsys):
    name = unique_name("eeg")
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 2, 100, pylsl.cf_float32, name))
    stop = threading.Event()

    def push():
        i = 0
        while not stop.is_set():
            outlet.push_sample([i, i])
            i += 1
            time.sleep(0.01)

    thread = threading.Thread(target=push, daemon=True)
    thread.start()
    try:
        assert main(["record", "--out", str(tmp_path), "--stream", name, "--seconds", "1.5"]) == 0
    finally:
        stop.set()
        thread.join()
    (path,) = tmp_path.glob("recording-*.xdf")
    streams, _ = pyxdf.load_xdf(str(path))
    values = np.asarray(streams[0]["time_series"])[:, 0]
    assert len(values) >= 100 and np.all(np.diff(values) == 1)
    assert "recorded" in capsys.readouterr().out
