"""Every recording format: read back exactly, epoch by marker, and replay as a real LSL stream."""

import time

import mne
import numpy as np
import pylsl
import pytest
import torch
from xdf_writer import write_xdf

from bci_stream.io import RecordingError, read_recording
from bci_stream.io.eegimagenet import load_eegimagenet
from bci_stream.lsl.inlet import stream_channel_labels
from bci_stream.sources.replay import RecordingReader, recording_pusher
from bci_stream.sources.simulate import OutletConfig

CH = ["O1", "Oz", "O2", "POz"]
MARKERS = [(200, "n02389026_7"), (700, "sorrel"), (1200, "n03888257_3")]


def signal(n=2000, sfreq=1000.0):
    t = np.arange(n) / sfreq
    return np.stack([np.sin(2 * np.pi * (5 + k) * t) * (10 + k) for k in range(len(CH))]).astype(np.float32)


def write_mne(path, sfreq=1000.0):
    data = signal(sfreq=sfreq)
    raw = mne.io.RawArray(data * 1e-6, mne.create_info(CH, sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([s / sfreq for s, _ in MARKERS], [0.0] * 3, [m for _, m in MARKERS]))
    if path.suffix == ".fif":
        raw.save(path, verbose="error")
    else:
        raw.export(path, verbose="error")
    return data


def write_eegimagenet(path, n_trials=6, n_ch=8, lengths=(500, 480, 520, 440, 610, 500)):
    rng = np.random.default_rng(0)
    dataset = [{"eeg": torch.from_numpy(rng.standard_normal((n_ch, lengths[i % len(lengths)])).astype(np.float32)),
                "image": i, "label": i % 3, "subject": 1 + i % 2} for i in range(n_trials)]
    torch.save({"dataset": dataset, "labels": ["n02389026", "n03888257", "n03584829"],
                "images": [f"n0238902{i}_{i}" for i in range(n_trials)]}, path)
    return dataset


@pytest.mark.parametrize("suffix", [".fif", ".edf", ".bdf", ".vhdr"])
def test_mne_formats_read_back_in_microvolts_with_markers(tmp_path, suffix):
    sfreq = 512.0 if suffix == ".bdf" else 1000.0
    data = write_mne(tmp_path / f"rec{suffix}", sfreq)
    rec = read_recording(tmp_path / f"rec{suffix}")
    assert rec.ch_names == CH and rec.sfreq == sfreq and rec.unit == "uV"
    assert rec.n_times >= data.shape[1]  # EDF/BDF pad the last data record
    np.testing.assert_allclose(rec.data[:, : data.shape[1]], data, atol=0.05 if suffix in (".edf", ".bdf") else 1e-3)
    assert [t for _, t in rec.events] == [m for _, m in MARKERS]
    assert [s for s, _ in rec.events] == [s for s, _ in MARKERS]


def test_xdf_reads_eeg_and_markers(tmp_path):
    data = signal()
    write_xdf(tmp_path / "rec.xdf", data, 1000.0, CH, MARKERS)
    rec = read_recording(tmp_path / "rec.xdf")
    assert rec.ch_names == CH and rec.sfreq == 1000.0
    np.testing.assert_array_equal(rec.data, data)
    assert rec.events == MARKERS


def test_xdf_in_volts_is_converted(tmp_path):
    data = signal() * 1e-6
    write_xdf(tmp_path / "v.xdf", data, 1000.0, CH, MARKERS, unit="V")
    np.testing.assert_allclose(read_recording(tmp_path / "v.xdf").data, data * 1e6, rtol=1e-5)


def test_eegimagenet_laid_end_to_end(tmp_path):
    dataset = write_eegimagenet(tmp_path / "eeg.pth")
    rec = read_recording(tmp_path / "eeg.pth")
    assert rec.data.shape == (8, sum(d["eeg"].shape[1] for d in dataset)) and rec.unit == "a.u."
    assert [t for _, t in rec.events] == [f"n0238902{i}_{i}" for i in range(6)]
    onset = rec.events[2][0]
    np.testing.assert_array_equal(rec.data[:, onset : onset + 520], dataset[2]["eeg"].numpy())
    only = read_recording(tmp_path / "eeg.pth", subject=2)
    assert len(only.events) == 3


def test_bad_files_fail_safely_with_clear_errors(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"dataset": [Exploit()], "labels": [], "images": []}, tmp_path / "evil.pth")
    with pytest.raises(RecordingError, match="refused to load"):
        load_eegimagenet(tmp_path / "evil.pth")
    (tmp_path / "junk.xdf").write_bytes(b"XDF:\x01\x02garbage")
    with pytest.raises(RecordingError, match="not a readable XDF"):
        read_recording(tmp_path / "junk.xdf")
    (tmp_path / "junk.edf").write_bytes(b"0" * 300)
    with pytest.raises(RecordingError, match="MNE cannot read"):
        read_recording(tmp_path / "junk.edf")
    with pytest.raises(RecordingError, match="unknown recording format"):
        read_recording(_touch(tmp_path / "a.txt"))
    with pytest.raises(RecordingError, match="0 data rows"):
        read_recording(_touch(tmp_path / "a.csv"))
    with pytest.raises(RecordingError, match="no recording"):
        read_recording(tmp_path / "missing.fif")
    torch.save({"something": 1}, tmp_path / "other.pth")
    with pytest.raises(RecordingError, match="not an ImageNet-EEG file"):
        load_eegimagenet(tmp_path / "other.pth")


def _touch(path):
    path.write_text("x")
    return path


def test_reader_loops_and_keeps_counting(tmp_path):
    write_xdf(tmp_path / "r.xdf", signal(), 1000.0, CH, MARKERS)
    reader = RecordingReader(read_recording(tmp_path / "r.xdf"), loop=True)
    data, markers = reader.read(2500)
    assert data.shape == (4, 2500)
    assert [s for s, _ in markers] == [200, 700, 1200, 2200]
    np.testing.assert_array_equal(data[:, 2000:], data[:, :500])


@pytest.mark.parametrize("suffix", [".xdf", ".fif", ".pth"])
def test_replay_streams_the_file_over_lsl(tmp_path, suffix, stream_name):
    path = tmp_path / f"rec{suffix}"
    if suffix == ".xdf":
        write_xdf(path, signal(), 1000.0, CH, MARKERS)
    elif suffix == ".fif":
        write_mne(path)
    else:
        write_eegimagenet(path)
    rec = read_recording(path)
    pusher = recording_pusher(rec, OutletConfig(name=stream_name, source_id=stream_name, chunk=0.02), speed=4.0)
    eeg = pylsl.StreamInlet(pylsl.resolve_byprop("name", stream_name, timeout=5)[0])
    mk = pylsl.StreamInlet(pylsl.resolve_byprop("name", f"{stream_name}-markers", timeout=5)[0])
    assert stream_channel_labels(eeg.info(timeout=5)) == rec.ch_names
    eeg.open_stream(timeout=5)
    mk.open_stream(timeout=5)
    pusher.start()
    got, texts = [], []
    t_end = time.time() + rec.duration / 4 + 2
    while time.time() < t_end and sum(len(g) for g in got) < rec.n_times:
        chunk, _ = eeg.pull_chunk(timeout=0.2, as_numpy=True)
        got.append(np.array(chunk).reshape(-1, len(rec.ch_names)))
        texts += [v[0] for v in mk.pull_chunk(timeout=0.0)[0]]
    time.sleep(0.1)
    texts += [v[0] for v in mk.pull_chunk(timeout=0.2)[0]]
    pusher.close()
    received = np.concatenate(got).T
    assert received.shape[1] == rec.n_times
    np.testing.assert_array_equal(received, rec.data)
    assert texts == [t for _, t in rec.events]
