"""The three real public data sets, read as published: through the trainer's data specs and
`bci-stream replay` (real LSL on loopback)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pylsl
import pytest

from bci_stream.io import RecordingError
from offline_training.datasets import load_trials

REAL = Path(__file__).resolve().parents[1].parent / "shared/data/real"
SSVEP = REAL / "ssvep_exo"
MUSE = REAL / "eegnb_muse"
SSVEP_IDS = "event_id=1:rest;2:13Hz;3:21Hz;4:17Hz"
N170_IDS = "event_id=1:house;2:face"
FIRST_SSVEP = SSVEP / "subject01" / "record-[2012.07.06-19.02.16]_raw.fif"
FIRST_N170 = MUSE / "N170" / "subject1" / "session1" / "data_2017-09-13-15.30.01.csv"

needs_ssvep = pytest.mark.skipif(not FIRST_SSVEP.is_file(), reason=f"SSVEP Exo files absent ({SSVEP})")
needs_muse = pytest.mark.skipif(not FIRST_N170.is_file(), reason=f"eeg-notebooks Muse files absent ({MUSE})")


@needs_ssvep
def test_an_ssvep_session_opens_by_its_literal_bracketed_name_with_its_eve_sidecar():
    trials = load_trials(f"mne:{FIRST_SSVEP},{SSVEP_IDS},tmin=1,tmax=4")
    assert len(trials) == 32
    assert trials.class_names == ["rest", "13Hz", "21Hz", "17Hz"]
    assert np.bincount(trials.labels).tolist() == [8, 8, 8, 8]
    assert trials.eeg.shape[1:] == (8, 768) and trials.sfreq == 256.0 and trials.unit == "uV"
    assert trials.ch_names == ["Oz", "O1", "O2", "PO3", "POz", "PO7", "PO8", "PO4"]


@needs_ssvep
@pytest.mark.parametrize("form", ["folder", "glob-option", "glob-path"])
def test_the_whole_ssvep_folder_gives_12_recordings_of_6_subjects_in_2_sessions(form):
    path = {"folder": f"{SSVEP}", "glob-option": f"{SSVEP},glob=subject*/*_raw.fif",
            "glob-path": f"{SSVEP}/subject*/*_raw.fif"}[form]
    trials = load_trials(f"mne:{path},{SSVEP_IDS},tmin=1,tmax=4")
    assert len(trials) == 12 * 32
    recordings = sorted(set(zip(trials.subjects.tolist(), trials.sessions.tolist(), trials.runs.tolist())))
    assert len(recordings) == 12 and len({r for _, _, r in recordings}) == 12  # a run per recording
    assert [(s, ses) for s, ses, _ in recordings] == [(s, ses) for s in range(1, 7) for ses in (1, 2)]
    for subject in range(1, 7):  # 8 trials per class in each session
        for session in (1, 2):
            mine = (trials.subjects == subject) & (trials.sessions == session)
            assert np.bincount(trials.labels[mine], minlength=4).tolist() == [8, 8, 8, 8]


@needs_muse
def test_n170_csv_gives_house_and_face_trials_with_a_run_per_recording():
    trials = load_trials(f"csv:{MUSE / 'N170' / 'subject1'},{N170_IDS},tmin=-0.1,tmax=0.6")
    assert trials.class_names == ["house", "face"]
    assert trials.ch_names == ["TP9", "AF7", "AF8", "TP10"]  # Right AUX left out
    assert trials.sfreq == 256.0 and trials.unit == "uV"
    assert sorted(set(trials.subjects.tolist())) == [1] and sorted(set(trials.sessions.tolist())) == [1]
    runs, per_run = np.unique(trials.runs, return_counts=True)
    assert len(runs) == 6 and all(180 <= n <= 220 for n in per_run)
    assert 0.35 < np.mean(trials.labels == 1) < 0.65
    assert 1.0 < float(np.median(np.abs(trials.eeg))) < 100.0  # µV, not V


@needs_muse
def test_p300_files_name_their_marker_column_marker_and_read_the_same_way():
    trials = load_trials(f"csv:{MUSE / 'P300' / 'subject1' / 'session2'},event_id=1:non-target;2:target,tmax=0.6")
    assert trials.class_names == ["non-target", "target"]
    assert len(np.unique(trials.runs)) == 5 and set(trials.sessions.tolist()) == {2}
    assert 0.08 < np.mean(trials.labels == 1) < 0.3  # the oddball is rare


@needs_muse
def test_a_recording_committed_twice_is_refused_naming_both_files(tmp_path):
    folder = tmp_path / "subject1" / "session1"
    folder.mkdir(parents=True)
    shutil.copy(FIRST_N170, folder / FIRST_N170.name)
    shutil.copy(FIRST_N170, folder / "data_2017-09-13-16.00.00.csv")
    with pytest.raises(RecordingError, match=r"data_2017-09-13-16\.00\.00\.csv holds the same data as .*15\.30\.01"):
        load_trials(f"csv:{tmp_path},{N170_IDS}")
    with pytest.warns(UserWarning, match="same data"):
        kept = load_trials(f"csv:{tmp_path},{N170_IDS},duplicates=drop")
    assert len(np.unique(kept.runs)) == 1


@needs_muse
def test_a_recording_whose_markers_are_mostly_missing_is_named(tmp_path):
    import pandas as pd

    for src in sorted((MUSE / "N170" / "subject1" / "session1").glob("*.csv"))[:3]:
        shutil.copy(src, tmp_path / src.name)
    sparse = tmp_path / FIRST_N170.name
    table = pd.read_csv(sparse)
    marked = np.flatnonzero(table["Marker0"].to_numpy())
    table.loc[marked[20:], "Marker0"] = 0  # 20 of ~200 markers left
    table.to_csv(sparse, index=False)
    with pytest.warns(UserWarning, match=rf"{FIRST_N170.name}: 20 markers"):
        load_trials(f"csv:{tmp_path},{N170_IDS}")
    with pytest.raises(RecordingError, match=rf"{FIRST_N170.name}: 20 markers"):
        load_trials(f"csv:{tmp_path},{N170_IDS},sparse_markers=refuse")
    with pytest.warns(UserWarning):
        dropped = load_trials(f"csv:{tmp_path},{N170_IDS},sparse_markers=drop")
    assert len(np.unique(dropped.runs)) == 2


def replay_and_collect(spec: str, name: str, *flags: str, seconds: float = 30.0):
    """Run `bci-stream replay SPEC` in a child process and take its EEG and markers over LSL."""
    cmd = [sys.executable, "-m", "bci_stream.cli", "replay", spec, "--name", name, "--source-id", name,
           "--wait-for-consumer", "20", *flags]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        eeg_info = pylsl.resolve_byprop("name", name, timeout=30)
        marker_info = pylsl.resolve_byprop("name", f"{name}-markers", timeout=10)
        assert eeg_info and marker_info, child.stdout.read() if child.poll() is not None else "no streams"
        eeg, markers = pylsl.StreamInlet(eeg_info[0]), pylsl.StreamInlet(marker_info[0])
        markers.open_stream(timeout=5)
        eeg.open_stream(timeout=5)
        samples, texts = [], []
        deadline = time.monotonic() + seconds + 60
        while time.monotonic() < deadline:
            chunk, _ = eeg.pull_chunk(timeout=0.2)
            samples += chunk
            texts += [v[0] for v in markers.pull_chunk(timeout=0.0)[0]]
            if child.poll() is not None and not chunk:
                break
        texts += [v[0] for v in markers.pull_chunk(timeout=0.5)[0]]
        out = child.communicate(timeout=30)[0]
    finally:
        if child.poll() is None:
            child.kill()
    return np.array(samples), texts, out


@needs_ssvep
def test_replay_streams_an_ssvep_fif_with_its_sidecar_events_named(stream_name):
    samples, texts, out = replay_and_collect(f"{FIRST_SSVEP},{SSVEP_IDS}", stream_name, "--speed", "40",
                                             "--seconds", "60")
    assert "32 markers" in out and "sent 15360 samples" in out, out
    import mne

    raw = mne.io.read_raw_fif(FIRST_SSVEP, verbose="error")  # the file's own scaling (volts), sent in µV
    expected = raw.get_data(units="uV", start=0, stop=15360).T
    np.testing.assert_allclose(samples, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
    # events in the first minute: 15.5, 22.0, 28.5 ... s; the first block is rest
    assert len(texts) >= 6 and set(texts) <= {"rest", "13Hz", "21Hz", "17Hz"} and texts[0] == "rest"


@needs_muse
def test_replay_streams_a_muse_csv_with_its_markers(stream_name):
    samples, texts, out = replay_and_collect(f"csv:{FIRST_N170},{N170_IDS}", stream_name, "--speed", "10",
                                             "--seconds", "10")
    assert "4 ch @ 256 Hz" in out and "sent 2560 samples" in out, out
    assert samples.shape == (2560, 4)
    assert len(texts) >= 15 and set(texts) == {"house", "face"}
