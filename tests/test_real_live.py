"""Real recordings through the live loop: a model trained with ``bci-train`` on some recordings of a
subject, another recording of that subject replayed as published over real LSL, decoded in event mode
(Muse faces vs houses) and in continuous mode (SSVEP Exo). The live decisions must equal the offline
path's on the same trials: the recording preprocessed causally from its first sample, epoched at the
marker, the card's features, ONNX Runtime. Skipped when ``../shared/data/real`` is absent."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bci_stream.contract.preprocessing import preprocess_continuous
from bci_stream.io import read_recording
from bci_stream.live.decoder import Decoder
from bci_stream.live.session import LiveConfig, LiveSession
from bci_stream.sources.replay import recording_pusher
from bci_stream.sources.simulate import OutletConfig

REAL = Path(__file__).resolve().parents[1].parent / "shared/data/real"
N170 = REAL / "eegnb_muse/N170/subject1/session1"
SSVEP = REAL / "ssvep_exo/subject01"
FACES = "event_id=1:house;2:face"
SSVEP_EVENTS = "event_id=1:rest;2:13Hz;3:21Hz;4:17Hz"
pytestmark = pytest.mark.skipif(not N170.is_dir() or not SSVEP.is_dir(),
                                reason=f"the real data sets are not at {REAL} (../shared/data/real)")


def train(tmp_path_factory, name: str, spec: str, *options: str) -> Path:
    """``bci-train fit`` + ``export`` through the command line a lab uses; the ONNX model's path."""
    from offline_training.cli import main as bci_train

    run = tmp_path_factory.mktemp(name)
    assert bci_train(["fit", "--data", spec, "--out", str(run / "run"), "--no-kd", "--epochs", "3", "--threads", "1",
                      "--seed", "0", *options]) == 0
    assert bci_train(["export", str(run / "run"), "--out", str(run / "model.onnx")]) == 0
    return run / "model.onnx"


@pytest.fixture(scope="module")
def faces_model(tmp_path_factory):
    """Trained on five of subject 1's six faces-vs-houses recordings (the sixth is replayed)."""
    files = sorted(N170.glob("*.csv"))[:-1]
    spec = "csv:" + ";".join(map(str, files)) + f",{FACES},tmin=-0.1,tmax=0.6"
    return train(tmp_path_factory, "faces", spec, "--student", "eegnet", "--window", "0", "0.6", "--bandpass", "1", "30")


@pytest.fixture(scope="module")
def ssvep_model(tmp_path_factory):
    """Trained on subject 1's first SSVEP session (the second is replayed)."""
    first = sorted(SSVEP.glob("*_raw.fif"))[0]
    return train(tmp_path_factory, "ssvep", f"mne:{first},{SSVEP_EVENTS},tmin=1,tmax=4", "--student", "shallow",
                 "--window", "1", "3", "--bandpass", "5", "45")


def replay_into(session: LiveSession, recording, name: str, speed: float, until) -> None:
    """Replay ``recording`` on LSL at ``speed`` x real time into ``session`` until ``until()`` or its end."""
    pusher = recording_pusher(recording, OutletConfig(name=name, source_id=name, counter=True), speed=speed)
    session.start()
    runner = threading.Thread(target=session.run, kwargs={"seconds": recording.duration / speed + 30.0})
    runner.start()
    pusher.start()
    deadline = time.monotonic() + recording.duration / speed + 30.0
    while not until() and time.monotonic() < deadline:
        time.sleep(0.05)
    session.stop()
    runner.join()
    pusher.close()


def offline_probabilities(decoder: Decoder, recording, end: int) -> np.ndarray:
    """The offline path's probabilities of the window ending at sample ``end`` (exclusive)."""
    card = decoder.card
    clean = preprocess_continuous(card.preprocessing_spec(), recording.data, recording.ch_names, recording.sfreq)
    order = [recording.ch_names.index(c) for c in card.ch_names]
    return decoder.classify(np.ascontiguousarray(clean[order, end - card.window_samples : end]))


@pytest.mark.slow  # trains on real recordings first, then replays one: ~2.5 min on 2 loaded cores; `make test` runs it
def test_a_replayed_faces_houses_recording_decodes_live_as_offline_and_loses_nothing(faces_model, stream_name):
    recording = read_recording(sorted(N170.glob("*.csv"))[-1], event_id="1:house;2:face")
    decoder = Decoder(faces_model, providers="cpu")
    card = decoder.card
    complete = [(s, t) for s, t in recording.events
                if s + card.offset_samples + card.window_samples <= recording.n_times]
    live = []
    session = LiveSession(decoder, LiveConfig(stream=stream_name, mode="event"),
                          listeners=[lambda p: live.append((p.marker, p.probabilities.copy()))])
    replay_into(session, recording, stream_name, speed=8.0, until=lambda: len(live) >= len(complete))

    assert len(complete) >= 150, "the recording holds about 200 stimuli"
    assert session.source.has_counter and session.source.lost_samples == 0
    assert [m for m, _ in live] == [t for _, t in complete], f"withheld {session.state.n_withheld}"
    assert {m for m, _ in live} == {"house", "face"}  # the published codes, named by event_id
    offline = Decoder(faces_model, providers="cpu")
    worst = max(float(np.abs(offline_probabilities(offline, recording, s + card.offset_samples + card.window_samples)
                             - probs).max()) for (s, _), (_, probs) in zip(complete, live))
    assert worst <= 1e-5, f"live probabilities differ from the offline path's by {worst:.2e}"
    assert session.state.event_accuracy["n"] == len(complete)  # every decision scored against its stimulus


@pytest.mark.slow  # trains on real SSVEP sessions first, then replays one: ~40 s on 2 loaded cores; `make test` runs it
def test_ssvep_session_decodes_continuously_every_hop_as_offline(ssvep_model, stream_name):
    recording = read_recording(sorted(SSVEP.glob("*_raw.fif"))[1], event_id="1:rest;2:13Hz;3:21Hz;4:17Hz")
    decoder = Decoder(ssvep_model, providers="cpu")
    live = []
    session = LiveSession(decoder, LiveConfig(stream=stream_name, mode="continuous"),
                          listeners=[lambda p: live.append((p.window_end_sample, p.probabilities.copy()))])
    replay_into(session, recording, stream_name, speed=16.0, until=lambda: len(live) >= 200)

    assert len(live) >= 200 and session.source.has_counter and session.source.lost_samples == 0
    hops = np.diff([end for end, _ in live])
    assert np.all(hops >= 1) and np.median(hops) == round(decoder.card.hop * recording.sfreq)
    offline = Decoder(ssvep_model, providers="cpu")
    worst = max(float(np.abs(offline_probabilities(offline, recording, end) - probs).max()) for end, probs in live[::20])
    assert worst <= 1e-5, f"continuous live probabilities differ from the offline path's by {worst:.2e}"
