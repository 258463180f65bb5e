"""Phantom sessions: the live stream is a new recording session, never a replay of the training data."""

import numpy as np
import pytest
from conftest import unique_name

from bci_stream.cli import build_parser
from bci_stream.sources.phantom import LIVE_SESSION, TRAINING_SESSION, Phantom, PhantomConfig
from bci_stream.sources.simulate import OutletConfig, phantom_pusher


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``hits / n``."""
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def epochs_at(data: np.ndarray, onsets: list[int], n: int) -> np.ndarray:
    """``(len(onsets), n_ch, n)`` epochs of ``data`` ``(n_ch, n_times)`` starting at ``onsets``."""
    return np.stack([data[:, o : o + n] for o in onsets])


def test_trials_record_the_training_session_and_streams_default_to_a_new_one():
    trials = Phantom(PhantomConfig(n_channels=8, n_classes=2, images_per_class=3, n_subjects=1)).trials()
    assert (trials.sessions == TRAINING_SESSION).all() and len(trials.sessions) == len(trials)
    assert (trials.subset([0, 2]).sessions == TRAINING_SESSION).all()
    other = Phantom(PhantomConfig(n_channels=8, n_classes=2, images_per_class=3, n_subjects=1)).trials(session=4)
    assert (other.sessions == 4).all() and "session=4" in other.source
    assert LIVE_SESSION != TRAINING_SESSION
    assert build_parser().parse_args(["simulate"]).session == LIVE_SESSION


def test_default_simulate_stream_shares_no_noise_realisation_with_the_training_trials(stream_name):
    # background only (no evoked response, no mains, whose phase is a function of time): what is
    # left is the pink noise and alpha drawn from the session's noise generator
    config = PhantomConfig(n_channels=16, n_classes=4, images_per_class=5, n_subjects=1, seed=3, snr=0.0, line_uv=0.0)
    trials = Phantom(config).trials()
    n, n_times = len(trials), trials.eeg.shape[-1]
    onsets = [int(config.sfreq) + k * n_times for k in range(n)]  # where trials() cut its epochs
    pusher = phantom_pusher(config, OutletConfig(name=stream_name, source_id=stream_name))  # what simulate streams
    try:
        live, _ = pusher.read(onsets[-1] + n_times)
    finally:
        pusher.close()
    training, _ = Phantom(config).new_stream(session=TRAINING_SESSION).read(onsets[-1] + n_times)

    def correlation(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    assert correlation(epochs_at(training, onsets, n_times), trials.eeg) > 0.999  # the control: same session
    per_epoch = [correlation(x, y) for x, y in zip(epochs_at(live, onsets, n_times), trials.eeg)]
    assert abs(correlation(epochs_at(live, onsets, n_times), trials.eeg)) < 0.05
    assert max(np.abs(per_epoch)) < 0.3  # no single epoch reused either


@pytest.fixture(scope="module")
def session_model(tmp_path_factory):
    """A small student whose by-image test split has 60 trials (enough for a useful interval)."""
    from offline_training.experiments.pipeline import train_and_test
    from offline_training.training.export import export_onnx
    from offline_training.training.fit import TrainConfig

    config = PhantomConfig(n_channels=16, n_classes=5, images_per_class=60, n_subjects=2, seed=3, evoked_uv=30.0)
    phantom = Phantom(config)
    trials = phantom.trials()
    run = tmp_path_factory.mktemp("session-run")
    train_and_test(trials, "by-image", TrainConfig(student="seed", epochs=6, seed=0), run, trials.soft_labels, "phantom", progress=False)
    path, _ = export_onnx(run, run / "model.onnx")
    return phantom, trials, path


def test_accuracy_on_a_fresh_session_is_out_of_sample(session_model):
    """Event-mode decisions on the default live session land within the Wilson interval of the
    model's by-image test accuracy; the training session's stream (what `simulate --blocks` used to
    send) scores far above it because the model has seen those trials."""
    from bci_stream.live.decoder import Decoder

    phantom, trials, path = session_model
    decoder = Decoder(path, providers="cpu")
    card = decoder.card
    start, length = card.offset_samples, card.window_samples

    def top1(epochs: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
        hits = sum(int(np.argmax(decoder.classify(np.ascontiguousarray(x[:, start : start + length]))) == y)
                   for x, y in zip(epochs, labels))
        return hits, len(labels)

    test = trials.subset(trials.splits["by-image"]["test"])
    lo, hi = wilson_interval(*top1(test.eeg, test.labels))

    def stream_accuracy(session: int, blocks: bool, n_per_subject: int = 160) -> float:
        hits = n = 0
        for subject in (1, 2):
            stream = phantom.new_stream(subject=subject, isi=0.5, session=session, blocks=blocks)
            data, markers = stream.read(1000 + (n_per_subject + 1) * 500)
            markers = markers[:n_per_subject]
            h, k = top1(epochs_at(data, [m[0] for m in markers], 500), np.array([m[2] for m in markers]))
            hits, n = hits + h, n + k
        assert n >= 300
        return hits / n

    for blocks in (False, True):  # `simulate` and `simulate --blocks`, default session
        assert lo <= stream_accuracy(LIVE_SESSION, blocks) <= hi
    assert stream_accuracy(TRAINING_SESSION, True) > hi  # memorised training trials: not a fair live figure


def test_simulate_prints_its_session(capsys):
    from bci_stream.cli import main

    assert main(["--local", "simulate", "--channels", "8", "--classes", "3", "--duration", "0.2",
                 "--name", unique_name("sim")]) == 0
    out = capsys.readouterr().out
    assert f"session {LIVE_SESSION}" in out and "training" in out
