"""A lab's own recordings: any class set, several files and BIDS datasets, splits that mean something."""

import json
from pathlib import Path

import mne
import numpy as np
import pytest
from xdf_writer import write_xdf

from bci_stream.io import RecordingError, read_recording
from offline_training.datasets import load_trials
from offline_training.training.splits import SplitError, make_split, resolve_split, time_blocked

EEGLAB = Path(__file__).resolve().parents[1].parent / "shared/data/eeglab/eeglab_data.set"
CH = ["O1", "Oz", "O2", "Pz"]
LAB_MAP = "# marker\tclass_id\tclass_name\nstim/A\tF\tface\nstim/B\tH\thouse\nstim/C\tT\ttool\n"


def write_lab_fif(path: Path, n_trials: int = 30, sfreq: float = 250.0, isi: float = 0.6, seed: int = 0,
                  extra_markers: bool = True) -> list[str]:
    """A synthetic recording with 3 made-up stimulus classes (each its own evoked wave) and a
    'resp' marker after some stimuli, as FIF with annotations; returns the stimulus markers in order."""
    rng = np.random.default_rng(seed)
    n = int((n_trials * isi + 1.5) * sfreq)
    data = rng.standard_normal((len(CH), n)) * 5.0
    t = np.arange(int(0.4 * sfreq)) / sfreq
    waves = {"stim/A": np.sin(2 * np.pi * 4 * t), "stim/B": np.sin(2 * np.pi * 8 * t), "stim/C": -np.sin(2 * np.pi * 4 * t)}
    onsets, texts = [], []
    for i in range(n_trials):
        marker = ["stim/A", "stim/B", "stim/C"][rng.integers(3)]
        s = int((0.5 + i * isi) * sfreq)
        data[:, s : s + len(t)] += 12.0 * waves[marker]
        onsets.append(s / sfreq)
        texts.append(marker)
    ann_on, ann_text = list(onsets), list(texts)
    if extra_markers:
        ann_on += [o + 0.3 for o in onsets[::5]]
        ann_text += ["resp"] * len(onsets[::5])
    raw = mne.io.RawArray(data * 1e-6, mne.create_info(CH, sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations(ann_on, [0.0] * len(ann_on), ann_text))
    raw.save(path, overwrite=True, verbose="error")
    return texts


def test_a_mapping_file_defines_the_lab_s_own_classes(tmp_path):
    markers = write_lab_fif(tmp_path / "run_raw.fif")
    (tmp_path / "classes.tsv").write_text(LAB_MAP)
    trials = load_trials(f"mne:{tmp_path / 'run_raw.fif'},mapping={tmp_path / 'classes.tsv'},tmin=-0.1,tmax=0.5")
    assert trials.class_ids == ["F", "H", "T"] and trials.class_names == ["face", "house", "tool"]
    assert trials.labels.tolist() == [{"stim/A": 0, "stim/B": 1, "stim/C": 2}[m] for m in markers]
    assert trials.tmin == pytest.approx(-0.1) and trials.eeg.shape == (30, 4, 150)
    assert trials.dropped == {"markers without a class (resp x6)": 6}
    # JSON mapping with [id, name] pairs gives the same classes
    (tmp_path / "classes.json").write_text(json.dumps({"stim/A": ["F", "face"], "stim/B": ["H", "house"],
                                                       "stim/C": ["T", "tool"]}))
    same = load_trials(f"mne:{tmp_path / 'run_raw.fif'},mapping={tmp_path / 'classes.json'},tmin=-0.1,tmax=0.5")
    assert same.class_names == trials.class_names and (same.labels == trials.labels).all()
    # classes=auto: the distinct markers (filtered by a glob) are the classes
    auto = load_trials(f"mne:{tmp_path / 'run_raw.fif'},classes=auto,markers=stim/*")
    assert auto.class_ids == ["stim/A", "stim/B", "stim/C"] and (auto.labels == trials.labels).all()
    with pytest.raises(RecordingError, match="none of its .* markers maps to a class"):
        load_trials(f"mne:{tmp_path / 'run_raw.fif'}")  # default: ImageNet-EEG classes, which these are not


def test_several_recordings_by_glob_take_runs_from_file_names_and_split_by_run(tmp_path):
    for run in (1, 2, 3, 4):
        write_lab_fif(tmp_path / f"sub-01_run-{run}_raw.fif", n_trials=12, seed=run)
    (tmp_path / "classes.tsv").write_text(LAB_MAP)
    trials = load_trials(f"mne:{tmp_path}/sub-01_run-*_raw.fif,mapping={tmp_path / 'classes.tsv'}")
    assert len(trials) == 48 and sorted(set(trials.runs.tolist())) == [1, 2, 3, 4]
    assert resolve_split(trials)[0] == "by-run"
    split = make_split(trials, "auto")
    assert not set(trials.runs[split["test"]]) & set(trials.runs[split["train"]])
    # two --data specs load as one set of trials, runs kept apart
    two = load_trials([f"mne:{tmp_path}/sub-01_run-1_raw.fif,mapping={tmp_path / 'classes.tsv'}",
                       f"mne:{tmp_path}/sub-01_run-2_raw.fif,mapping={tmp_path / 'classes.tsv'}"])
    assert len(two) == 24 and len(set(two.runs.tolist())) == 2 and " + " in two.source


def test_bids_dataset_gives_subjects_sessions_and_runs(tmp_path):
    mne_bids = pytest.importorskip("mne_bids")
    root = tmp_path / "bids"
    for sub in ("01", "02"):
        for run in ("1", "2"):
            fif = tmp_path / f"s{sub}r{run}_raw.fif"
            write_lab_fif(fif, n_trials=9, seed=int(sub) * 10 + int(run), extra_markers=False)
            raw = mne.io.read_raw_fif(fif, verbose="error")
            path = mne_bids.BIDSPath(subject=sub, session="a", task="lab", run=run, datatype="eeg", root=root)
            mne_bids.write_raw_bids(raw, path, overwrite=True, verbose="error", format="BrainVision", allow_preload=True)
    trials = load_trials(f"bids:{root},task=lab,classes=auto")
    assert len(trials) == 36 and trials.class_ids == ["stim/A", "stim/B", "stim/C"]
    assert sorted(set(trials.subjects.tolist())) == [1, 2] and sorted(set(trials.runs.tolist())) == [1, 2]
    loso = make_split(trials, "loso-2")
    assert set(trials.subjects[loso["test"]]) == {2}
    one = load_trials(f"bids:{root},task=lab,subject=01,classes=auto")
    assert set(one.subjects.tolist()) == {1} and len(one) == 18
    with pytest.raises(RecordingError, match="no EEG recording with task=rest"):
        load_trials(f"bids:{root},task=rest")
    with pytest.raises(RecordingError, match="not a BIDS dataset"):
        load_trials(f"bids:{tmp_path}")


def test_time_blocked_split_is_contiguous_and_stratified(tmp_path):
    write_lab_fif(tmp_path / "one_raw.fif", n_trials=40)
    (tmp_path / "classes.tsv").write_text(LAB_MAP)
    trials = load_trials(f"mne:{tmp_path / 'one_raw.fif'},mapping={tmp_path / 'classes.tsv'}")
    assert resolve_split(trials)[0] == "time-blocked"
    split = time_blocked(trials)
    for k in range(3):
        idx = np.flatnonzero(trials.labels == k)
        roles = ["test" if i in split["test"] else "val" if i in split["val"] else "train" for i in idx]
        # each class: train block, then validation block, then test block, never interleaved
        assert roles == sorted(roles, key=["train", "val", "test"].index)
        assert roles.count("test") >= 1 and roles.count("val") >= 1
    # markers that code classes: by-image cannot work, and says which split would
    with pytest.raises(SplitError, match="split 'by-image' cannot be used: its (val|test) part is empty; use --split time-blocked"):
        make_split(trials, "by-image")
    with pytest.raises(SplitError, match="by-run split needs at least 3 runs"):
        make_split(trials, "by-run")


def test_things_eeg2_blocks_are_sessions_and_never_share_test_images(tmp_path):
    d = {"preprocessed_eeg_data": np.random.randn(30, 4, 5, 20).astype(np.float32),
         "times": np.arange(20) / 100 - 0.2}
    np.save(tmp_path / "preprocessed_eeg_training.npy", d, allow_pickle=True)
    trials = load_trials(f"things:{tmp_path}")
    assert trials.sessions[:4].tolist() == [0, 1, 2, 3] and (trials.runs == trials.sessions).all()
    split = make_split(trials, "by-block")
    assert not set(trials.image_ids[split["test"]]) & set(trials.image_ids[split["train"]])
    assert len(split["train"]) > len(split["test"]) > 0
    for k in np.unique(trials.labels[split["test"]]):
        test_sessions = set(trials.sessions[split["test"]][trials.labels[split["test"]] == k])
        train_sessions = set(trials.sessions[split["train"]][trials.labels[split["train"]] == k])
        assert not test_sessions & train_sessions


def test_xdf_keeps_eeg_channels_and_refuses_a_file_without_eeg(tmp_path):
    data = np.random.default_rng(0).standard_normal((5, 1000)).astype(np.float32)
    names = CH + ["TRIG"]
    markers = [(100, "stim/A"), (500, "stim/B")]
    write_xdf(tmp_path / "eeg.xdf", data, 500.0, names, markers, ch_types=["EEG"] * 4 + ["STIM"])
    rec = read_recording(tmp_path / "eeg.xdf")
    assert rec.ch_names == CH and rec.events == markers
    np.testing.assert_array_equal(rec.data, data[:4])
    with pytest.warns(UserWarning, match=r"keeping non-EEG channels \['TRIG \(STIM\)'\]"):
        assert read_recording(tmp_path / "eeg.xdf", channels="all").ch_names == names
    # a 1 Hz counter of another type and a control message stream: no EEG, said clearly
    write_xdf(tmp_path / "counter.xdf", np.arange(20, dtype=np.float32)[None], 1.0, ["count"], [(3, "start")],
              stream_type="Counter", marker_type="Control")
    with pytest.raises(RecordingError, match=r"no EEG stream \(type EEG\) with samples; streams: 'EEG' \(type Counter"):
        read_recording(tmp_path / "counter.xdf")
    with pytest.raises(RecordingError, match="epoch 0..0.5 s is 0 sample"):
        load_trials(f"xdf:{tmp_path / 'counter.xdf'},eeg_stream=EEG,marker_stream=Markers,channels=all,classes=auto,tmax=0.5")


@pytest.mark.skipif(not EEGLAB.is_file(), reason=f"EEGLAB tutorial recording not at {EEGLAB} (../shared/data/eeglab)")
def test_eeglab_event_field_gives_square_positions():
    rec = read_recording(EEGLAB, event_field="position")
    texts = [t for _, t in rec.events]
    assert texts.count("square/1") == 40 and texts.count("square/2") == 40 and texts.count("rt") == 74
    plain = read_recording(EEGLAB)
    assert [s for s, _ in rec.events] == [s for s, _ in plain.events]  # same samples as MNE's annotations
    mapping = Path(__file__).resolve().parents[1] / "examples/eeglab_square_position.tsv"
    trials = load_trials(f"mne:{EEGLAB},event_field=position,mapping={mapping},tmin=-0.2,tmax=0.8")
    assert len(trials) == 80 and trials.n_classes == 2 and trials.sfreq == 128.0
    assert trials.dropped == {"markers without a class (rt x74)": 74}
    assert resolve_split(trials)[0] == "time-blocked"
