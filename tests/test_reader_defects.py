"""Issue 22's reader defects, each pinned by a test: units, literal paths, CNT, stim channel vs
annotations, replay's reader options, truncated BrainVision, replay pacing."""

from __future__ import annotations

import mne
import numpy as np
import pytest
from xdf_writer import write_xdf

from bci_stream.io import RecordingError, read_recording
from bci_stream.sources.replay import read_replay_spec, recording_pusher
from bci_stream.sources.simulate import OutletConfig
from offline_training.datasets import load_trials, parse_spec

CH = ["O1", "Oz", "O2", "POz"]
MARKERS = [(200, "a"), (700, "b"), (1200, "a")]


def signal(n=2000, sfreq=1000.0):
    t = np.arange(n) / sfreq
    return np.stack([np.sin(2 * np.pi * (5 + k) * t) * (10 + k) for k in range(len(CH))]).astype(np.float32)


def write_fif(path, with_stim=False, scale=1.0):
    data, names, types = signal() * 1e-6 * scale, list(CH), ["eeg"] * len(CH)
    if with_stim:
        stim = np.zeros((1, data.shape[1]))
        for k, s in enumerate(range(100, 1900, 140)):  # 13 triggers, as test_reduced.edf's Status channel
            stim[0, s : s + 5] = 1 + k % 3
        data, names, types = np.vstack([data, stim]), names + ["Status"], types + ["stim"]
    raw = mne.io.RawArray(data, mne.create_info(names, 1000.0, types), verbose="error")
    raw.set_annotations(mne.Annotations([s / 1000 for s, _ in MARKERS], [0.0] * 3, [m for _, m in MARKERS]))
    raw.save(path, overwrite=True, verbose="error")
    return path


# 3. XDF units: one table (units.conversion_factor) for every reader; unknown/missing refused
@pytest.mark.parametrize(("unit", "factor"), [("nanovolts", 1e-3), ("nV", 1e-3), ("0", 1e6), ("-6", 1.0),
                                              ("μV", 1.0), ("µV", 1.0), ("mV", 1e3)])
def test_xdf_units_are_converted_by_the_live_inlets_table(tmp_path, unit, factor):
    write_xdf(tmp_path / "r.xdf", signal(), 1000.0, CH, MARKERS, unit=unit)
    rec = read_recording(tmp_path / "r.xdf")
    assert rec.unit == "uV"
    np.testing.assert_allclose(rec.data, signal() * factor, rtol=1e-6, atol=1e-6 * 20 * factor)


@pytest.mark.parametrize("unit", ["", "furlongs"])
def test_xdf_without_a_known_unit_is_refused_offline_with_the_override_named(tmp_path, unit):
    write_xdf(tmp_path / "r.xdf", signal(), 1000.0, CH, MARKERS, unit=unit)
    with pytest.raises(RecordingError, match="unit=uV"):
        read_recording(tmp_path / "r.xdf")
    with pytest.raises(RecordingError, match="unit=uV"):
        load_trials(f"xdf:{tmp_path / 'r.xdf'},classes=auto")
    with pytest.raises(RecordingError, match="unit=uV"):
        read_replay_spec(str(tmp_path / "r.xdf"))
    trials = load_trials(f"xdf:{tmp_path / 'r.xdf'},classes=auto,unit=nV")
    np.testing.assert_allclose(trials.eeg[0], signal()[:, 200:700] * 1e-3, rtol=1e-5, atol=1e-7)
    _, rec = read_replay_spec(f"{tmp_path / 'r.xdf'},unit=mV")
    np.testing.assert_allclose(rec.data, signal() * 1e3, rtol=1e-6, atol=1e-3)


# 4. A path that exists opens as itself, whatever characters it holds
@pytest.mark.parametrize("folder", ["plain", "run=1", "a,b", "x;y", "[2012]"])
def test_a_path_that_exists_opens_as_itself(tmp_path, folder):
    path = write_fif((tmp_path / folder).mkdir() or tmp_path / folder / "record-[2012.07.06-19.02.16]_raw.fif")
    kind, got, opts = parse_spec(f"mne:{path},classes=auto,tmax=0.2")
    assert (kind, got, opts) == ("mne", str(path), {"classes": "auto", "tmax": "0.2"})
    trials = load_trials(f"mne:{path},classes=auto,tmax=0.2")
    assert len(trials) == 3 and trials.class_names == ["a", "b"]
    whole_folder = load_trials(f"mne:{tmp_path / folder},classes=auto,tmax=0.2")
    assert len(whole_folder) == 3
    replayed_path, rec = read_replay_spec(str(path))
    assert replayed_path == path and rec.events == [(200, "a"), (700, "b"), (1200, "a")]


def test_a_glob_is_still_a_glob_when_no_file_has_that_name(tmp_path):
    for k in (1, 2):
        write_fif(tmp_path / f"sub-01_run-{k}_raw.fif", scale=k)  # two recordings, not one twice
    trials = load_trials(f"mne:{tmp_path}/sub-01_run-*_raw.fif,classes=auto,tmax=0.2")
    assert sorted(set(trials.runs.tolist())) == [1, 2]
    with pytest.raises(RecordingError, match="no file matches"):
        load_trials(f"mne:{tmp_path}/sub-02_*_raw.fif,classes=auto")


# 10. CNT: the reader is chosen (Neuroscan, then ANT), not refused as ambiguous
def test_a_cnt_file_is_tried_as_neuroscan_then_ant_with_one_clear_line(tmp_path):
    (tmp_path / "rec.cnt").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(RecordingError, match=r"neither Neuroscan nor ANT Neuro CNT \(read_raw_cnt.*read_raw_ant"):
        read_recording(tmp_path / "rec.cnt")


# 11. An explicit stim_channel= is used even when the file has annotations; the choice is said
def test_stim_channel_is_used_and_the_unused_annotations_are_named(tmp_path, caplog):
    path = write_fif(tmp_path / "both_raw.fif", with_stim=True)
    with pytest.warns(UserWarning, match=r"not used: annotations \(3 events; events_from=annotations\)"):
        with caplog.at_level("INFO", logger="bci_stream.io.mne_raw"):
            rec = read_recording(path, stim_channel="Status")
    assert len(rec.events) == 13 and {t for _, t in rec.events} == {"1", "2", "3"}
    assert "13 events from stim channel Status (13)" in caplog.text
    both = read_recording(path, events_from="both")
    assert len(both.events) == 16
    with pytest.warns(UserWarning, match=r"stim channel \(default\) \(13 events; events_from=stim\)"):
        plain = read_recording(path)
    assert [t for _, t in plain.events] == ["a", "b", "a"]
    trials = load_trials(f"mne:{path},stim_channel=Status,events_from=stim,classes=auto,tmax=0.1")
    assert len(trials) == 13


def test_an_events_file_gives_the_markers_and_event_id_names_them(tmp_path):
    path = write_fif(tmp_path / "run_raw.fif")
    events = np.array([[300, 0, 1], [900, 0, 2], [1500, 0, 1]])
    mne.write_events(tmp_path / "elsewhere-eve.fif", events, verbose="error")
    with pytest.warns(UserWarning, match="annotations"):
        rec = read_recording(path, events=str(tmp_path / "elsewhere-eve.fif"), event_id="1:rest;2:13Hz")
    assert rec.events == [(300, "rest"), (900, "13Hz"), (1500, "rest")]
    mne.write_events(tmp_path / "run-eve.fif", events, verbose="error")  # the sidecar, found by itself
    with pytest.warns(UserWarning, match="annotations"):
        trials = load_trials(f"mne:{path},event_id=1:rest;2:13Hz,tmax=0.2")
    assert trials.class_names == ["rest", "13Hz"] and trials.labels.tolist() == [0, 1, 0]
    with pytest.raises(RecordingError, match="CODE:NAME"):
        read_recording(path, event_id="1=rest")


# 14. replay takes eeg_stream= / marker_stream= (its own advice); truncated BrainVision; pacing
def test_replay_accepts_the_reader_options_its_advice_names(tmp_path):
    write_xdf(tmp_path / "m.xdf", signal(), 1000.0, CH, MARKERS, marker_type="Triggers")
    with pytest.warns(UserWarning, match="marker_stream=NAME"):
        _, rec = read_replay_spec(str(tmp_path / "m.xdf"))
    assert rec.events == []
    _, rec = read_replay_spec(f"{tmp_path / 'm.xdf'},eeg_stream=EEG,marker_stream=Markers")
    assert [t for _, t in rec.events] == ["a", "b", "a"]
    with pytest.raises(RecordingError, match="does not apply to XDF"):
        read_replay_spec(f"{tmp_path / 'm.xdf'},event_id=1:a")


def test_a_truncated_brainvision_file_is_refused_with_the_sample_counts(tmp_path):
    raw = mne.io.RawArray(signal() * 1e-6, mne.create_info(CH, 1000.0, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([s / 1000 for s, _ in MARKERS], [0.0] * 3, [m for _, m in MARKERS]))
    raw.export(tmp_path / "rec.vhdr", verbose="error")
    assert len(read_recording(tmp_path / "rec.vhdr").events) == 3
    data = (tmp_path / "rec.eeg").read_bytes()
    (tmp_path / "rec.eeg").write_bytes(data[: 1000 * 4 * len(CH)])  # 1000 of 2000 samples: the last marker after
    with pytest.raises(RecordingError, match=r"holds 1000 samples but 1 of 3 markers .* come later"):
        read_recording(tmp_path / "rec.vhdr")
    (tmp_path / "rec.eeg").write_bytes(data[: 1000 * 4 * len(CH) + 6])  # inside a sample
    with pytest.raises(RecordingError, match="truncated inside sample 1001"):
        read_replay_spec(str(tmp_path / "rec.vhdr"))


def test_replay_sends_only_the_seconds_asked_even_with_a_longer_chunk(tmp_path, stream_name):
    rec = read_recording(write_fif(tmp_path / "r_raw.fif"))
    pusher = recording_pusher(rec, OutletConfig(name=stream_name, source_id=stream_name, chunk=5.0), speed=50.0)
    pusher.run(duration=0.1)
    assert pusher.sent == 100
    pusher.close()


def test_replay_waits_no_longer_than_the_recording_when_the_chunk_is_longer(tmp_path, stream_name, monkeypatch):
    import bci_stream.sources.simulate as simulate

    waits = []
    monkeypatch.setattr(simulate.time, "sleep", lambda s: waits.append(s))  # the schedule, not the clock
    rec = read_recording(write_fif(tmp_path / "r_raw.fif"))  # 2 s
    pusher = recording_pusher(rec, OutletConfig(name=stream_name, source_id=stream_name, chunk=30.0))
    pusher.run()
    assert pusher.sent == 2000
    assert len(waits) == 1 and waits[0] <= rec.duration  # one chunk, due when its last (2-s) sample is
    pusher.close()
