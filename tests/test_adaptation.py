"""Label-free session adaptation (bci_stream.contract.adaptation) in the live decoder: the re-centring's
statistics, the decoder normalising with them once ready (and with the training ones until then, and
for good when off), a hot-swapped model starting afresh, the JSONL fields and event of a live session
on an LSL stream, and the command line's options."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import load_tool, unique_name

from bci_stream.contract.adaptation import AdaptConfig, FeatureRecentring
from bci_stream.live.config import LiveConfig
from bci_stream.live.decoder import Decoder
from bci_stream.live.session import LiveSession
from bci_stream.sources.phantom import Phantom
from bci_stream.sources.simulate import OutletConfig, phantom_pusher
from bci_stream.testing import CollectingSink, ScriptedSource

RECENTRE = AdaptConfig(mode="recentre", windows=8)
SSVEP_EXO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "ssvep_exo"


def _assert_centred(z: np.ndarray) -> None:
    """Inputs ``(n, ch, rows, cols)`` re-centred on themselves: the re-centring's own estimate of them is
    centre 0 and spread 1 (the estimator is equivariant: (x - c) / s has centre 0 and spread 1)."""
    rec = FeatureRecentring(AdaptConfig("recentre", windows=len(z)), z.shape[1], z.shape[2])
    rec.update(z)
    centre, spread = rec.z_statistics()
    np.testing.assert_allclose(centre, 0, atol=1e-4)
    np.testing.assert_allclose(spread, 1, atol=1e-3)


# --- FeatureRecentring on arrays ---------------------------------------------------------------
def test_recentring_recovers_a_shift_and_a_scale_in_feature_units(rng):
    shift, scale = rng.normal(size=(4, 3, 1)) * 2, rng.uniform(0.5, 3.0, size=(4, 3, 1))
    z = (rng.standard_normal((400, 4, 3, 9)) * scale + shift).astype(np.float32)
    rec = FeatureRecentring(AdaptConfig("recentre", windows=400), 4, 3)
    assert rec.update(z) and rec.ready and rec.n == 400
    train_mean, train_std = rng.normal(size=(4, 3, 1)), rng.uniform(1, 2, size=(4, 3, 1))
    mean, std = rec.statistics(train_mean, train_std)
    error = (mean - (train_mean + train_std * shift)) / (train_std * scale)  # in the estimate's own spread
    assert np.abs(error).max() < 5 / np.sqrt(400 * 9)
    np.testing.assert_allclose(std, train_std * scale, rtol=0.05)
    again = rec.apply(z)  # the session's own z-scores: about mean 0, SD 1, and exactly the estimator's (0, 1)
    np.testing.assert_allclose(again.mean(axis=(0, 3)), 0, atol=0.05)
    np.testing.assert_allclose(again.std(axis=(0, 3)), 1, atol=0.05)
    _assert_centred(again)
    summary = rec.summary()
    assert summary["mode"] == "recentre" and summary["windows"] == 400 and summary["shift_z"] > 0.5


def test_recentring_stops_at_its_windows_and_leaves_out_non_finite_inputs(rng):
    z = rng.standard_normal((8, 2, 3, 5)).astype(np.float32)
    rec = FeatureRecentring(AdaptConfig("recentre", windows=5), 2, 3)
    bad = z[0].copy()
    bad[1, 2, 3] = np.nan
    assert rec.update(bad) is False and rec.n == 0  # left out
    assert rec.update(z[0]) is False and rec.n == 1
    assert rec.update(z[1:]) is True and rec.n == 5  # a batch beyond the windows: only what was missing
    assert rec.update(z[5]) is False and rec.n == 5  # ready: nothing more is taken
    first = FeatureRecentring(AdaptConfig("recentre", windows=5), 2, 3)
    first.update(z[:5])
    for a, b in zip(rec.z_statistics(), first.z_statistics()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="at least 2 inputs"):
        FeatureRecentring(RECENTRE, 2, 3).z_statistics()



def test_a_blink_in_the_buffer_does_not_set_the_session_s_scale(rng):
    """Robust estimates: a few artifact windows among the first inputs (a blink 20x the background) leave
    the session's centre and spread where the clean windows put them; a mean and SD would not."""
    z = rng.standard_normal((40, 2, 3, 10)).astype(np.float32)
    z[[3, 11]] *= 20.0  # two windows of a blink
    rec = FeatureRecentring(AdaptConfig("recentre", windows=40), 2, 3)
    rec.update(z)
    centre, spread = rec.z_statistics()
    assert np.abs(centre).max() < 0.15 and np.abs(spread - 1).max() < 0.15
    assert np.abs(z.std(axis=(0, 3)) - 1).min() > 2  # what a standard deviation over the buffer would say

def test_adapt_config_round_trips_and_refuses_bad_settings_in_one_line():
    config = AdaptConfig("recentre", windows=30)
    assert config.enabled and not AdaptConfig().enabled and AdaptConfig().mode == "off"
    assert AdaptConfig.from_dict(config.to_dict()) == config and AdaptConfig.from_dict(None) == AdaptConfig()
    for bad, match in (({"mode": "recentre", "size": 3}, "unknown keys"), ({"mode": "whiten"}, "adaptation mode"),
                       ({"windows": 1}, "at least 2")):
        with pytest.raises(ValueError, match=match) as err:
            AdaptConfig.from_dict(bad)
        assert "\n" not in str(err.value)


# --- the decoder ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trial_windows(tiny_model, tiny_phantom_config) -> np.ndarray:
    """``(n, n_channels, window_samples)`` windows of the tiny phantom's preprocessed trials (µV)."""
    window = Decoder(tiny_model, providers="cpu").card.window_samples
    eeg = Phantom(tiny_phantom_config).trials(subjects=[1]).eeg
    return np.ascontiguousarray(eeg[:24, :, -window:], dtype=np.float32)


def _features(decoder: Decoder, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each window classified in full: ``(outputs (n, n_outputs), features (n, ch, rows, cols))``."""
    out, feats = [], []
    for w in windows:
        out.append(decoder.classify(w))
        feats.append(decoder.last_features.copy())
    return np.stack(out), np.stack(feats)


def test_a_gain_change_is_recentred_after_the_windows_and_decided_with_training_statistics_until_then(
        tiny_model, trial_windows):
    louder = trial_windows[: RECENTRE.windows] * 3  # another amplifier gain, another day
    adapted, plain = Decoder(tiny_model, providers="cpu"), Decoder(tiny_model, providers="cpu")
    adapted.set_adaptation(RECENTRE)
    before, _ = _features(adapted, louder)
    reference, _ = _features(plain, louder)
    np.testing.assert_array_equal(before, reference)  # the first windows: the card's statistics
    assert adapted.recentring.ready and adapted.recentring.n == RECENTRE.windows
    after, z = _features(adapted, louder)
    _, z_plain = _features(plain, louder)
    _assert_centred(z)  # the same windows again: the session's z-scores
    assert abs(z_plain.mean()) + abs(np.sqrt((z_plain ** 2).mean()) - 1) > 0.3  # without: off the training's
    assert not np.allclose(after, reference)
    adapted.reset()  # a gap in the stream: the same session, the adaptation stays
    np.testing.assert_array_equal(_features(adapted, louder)[0], after)
    adapted.set_adaptation(RECENTRE)  # a new session: gathered again, the card's statistics meanwhile
    assert adapted.recentring.n == 0
    np.testing.assert_array_equal(_features(adapted, louder[:2])[0], reference[:2])


def test_adaptation_off_leaves_every_output_bit_identical(tiny_model, trial_windows):
    fresh, switched = Decoder(tiny_model, providers="cpu"), Decoder(tiny_model, providers="cpu")
    switched.set_adaptation(AdaptConfig())
    assert switched.recentring is None
    signal = np.concatenate(list(trial_windows[:6]), axis=1)
    np.testing.assert_array_equal(_stream(fresh, signal), _stream(switched, signal))


def _stream(decoder: Decoder, signal: np.ndarray, hop: int | None = None) -> np.ndarray:
    """Outputs of windows hopping through ``signal`` ``(n_channels, n_samples)``, with their ``end``
    (the incremental spectrogram's path)."""
    window, hop = decoder.card.window_samples, hop or decoder.card.hop_samples
    ends = range(window, signal.shape[1] + 1, hop)
    return np.stack([decoder.classify(np.ascontiguousarray(signal[:, e - window:e]), e) for e in ends])


def test_the_incremental_spectrogram_starts_afresh_when_the_session_statistics_take_over(tiny_model, trial_windows):
    incremental = Decoder(tiny_model, providers="cpu")
    full = Decoder(tiny_model, providers="cpu", incremental=False)
    assert incremental.rolling is not None
    for decoder in (incremental, full):
        decoder.set_adaptation(RECENTRE)
    signal = 3 * np.concatenate(list(trial_windows[:3]), axis=1)[:, : incremental.card.window_samples + 30 * 20]
    a, b = _stream(incremental, signal, hop=20), _stream(full, signal, hop=20)
    assert len(a) > RECENTRE.windows + 5 and incremental.recentring.ready
    np.testing.assert_allclose(a, b, atol=1e-5)  # kept columns were training z-scores: not reused after


def test_a_swapped_model_gathers_its_own_statistics(tiny_model):
    config = LiveConfig(adapt=AdaptConfig("recentre", windows=5))
    session = LiveSession(Decoder(tiny_model, providers="cpu"), config, source=ScriptedSource(16),
                          outlet=CollectingSink())
    first = session.decoder.recentring
    assert first is not None and first.config == config.adapt
    new = Decoder(tiny_model, providers="cpu")
    session.swap_decoder(new)
    assert new.recentring is not None and new.recentring is not first and new.recentring.n == 0
    assert new.recentring.config == config.adapt
    assert LiveSession(Decoder(tiny_model, providers="cpu"), LiveConfig(), source=ScriptedSource(16),
                       outlet=CollectingSink()).decoder.recentring is None


# --- a live session on an LSL stream ------------------------------------------------------------------
def _run_session(tiny_model, stream_name: str, log, adapt: AdaptConfig) -> LiveSession:
    session = LiveSession(Decoder(tiny_model, providers="cpu"),
                          LiveConfig(stream=stream_name, log_path=log, outlet_name=unique_name("pred"), adapt=adapt))
    session.start()
    runner = threading.Thread(target=session.run, kwargs={"seconds": 1.2})
    runner.start()
    runner.join()
    return session


def test_a_live_session_says_its_adaptation_state_per_decision_and_logs_when_it_is_ready(
        tiny_model, tiny_phantom_config, stream_name, tmp_path):
    pusher = phantom_pusher(tiny_phantom_config, OutletConfig(name=stream_name, source_id=stream_name), isi=0.5).start()
    try:
        adapted = _run_session(tiny_model, stream_name, tmp_path / "adapt.jsonl", AdaptConfig("recentre", windows=5))
        plain = _run_session(tiny_model, stream_name, tmp_path / "plain.jsonl", AdaptConfig())
    finally:
        pusher.close()
    records = [json.loads(line) for line in (tmp_path / "adapt.jsonl").read_text().splitlines()]
    assert records[0]["event"] == "session_start" and records[0]["adapt"] == {"mode": "recentre", "windows": 5}
    decisions = [r for r in records if "probabilities" in r]
    assert len(decisions) > 10
    assert [d["adapt_state"] for d in decisions[:5]] == ["calibrating"] * 5
    assert [d["adapt_windows"] for d in decisions[:5]] == [1, 2, 3, 4, 5]
    assert {d["adapt_state"] for d in decisions[5:]} == {"recentred"} and {d["adapt_windows"] for d in decisions[5:]} == {5}
    ready = [i for i, r in enumerate(records) if r.get("event") == "adaptation_ready"]
    assert len(ready) == 1 and records[ready[0] - 1] == decisions[4]  # right after the 5th decision
    assert records[ready[0]]["windows"] == 5 and records[ready[0]]["mode"] == "recentre"
    assert adapted.state.summary()["adaptation"]["windows"] == 5
    records = [json.loads(line) for line in (tmp_path / "plain.jsonl").read_text().splitlines()]
    assert records[0]["adapt"] == {"mode": "off", "windows": 60}
    assert not any("adapt_state" in r or "adapt_windows" in r or r.get("event") == "adaptation_ready" for r in records)
    assert sum("probabilities" in r for r in records) > 10 and plain.state.summary()["adaptation"] == {}


# --- the command line ---------------------------------------------------------------------------------
def test_the_live_command_parses_the_adaptation_options_into_its_config():
    from bci_stream.cli import build_parser
    from bci_stream.commands.live import live_config

    parser = build_parser()
    args = parser.parse_args(["live", "--model", "demo", "--headless", "--adapt", "recentre", "--adapt-windows", "5"])
    assert live_config(args).adapt == AdaptConfig("recentre", windows=5)
    assert live_config(parser.parse_args(["live", "--model", "demo", "--headless"])).adapt == AdaptConfig()


def test_too_few_adaptation_windows_is_a_one_line_error(capsys):
    from bci_stream.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["live", "--model", "demo", "--headless", "--adapt", "recentre", "--adapt-windows", "1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err
    assert "--adapt-windows" in errors[0] and "at least 2" in errors[0] and "--adapt-windows 60" in errors[0]


# --- the covariance pipelines' re-centring and the real-data benchmark's pieces ------------------
def test_riemann_recentring_centres_a_session_at_the_identity_whatever_its_mixing(rng):
    from pyriemann.utils.mean import mean_riemann

    from bci_stream.contract.adaptation import RiemannRecentring

    mixing = rng.normal(size=(4, 4)) + 3 * np.eye(4)  # another day's cap: every covariance A C A^T
    x = rng.standard_normal((60, 4, 200))
    covs = np.einsum("nct,ndt->ncd", x, x) / 200
    shifted = mixing @ covs @ mixing.T
    centred = RiemannRecentring().fit_transform(shifted)
    np.testing.assert_allclose(mean_riemann(centred), np.eye(4), atol=1e-6)
    step = RiemannRecentring().set_reference(shifted[:20])  # a new session's first 20 covariances
    assert np.abs(mean_riemann(step.transform(shifted[:20])) - np.eye(4)).max() < 1e-6
    with pytest.raises(ValueError, match="fit it"):
        RiemannRecentring().transform(covs)


def test_the_benchmark_s_buffers_are_each_session_s_first_trials_balanced_or_one_class():
    bench = load_tool("bench_adaptation")
    labels = np.array([0] * 8 + [1, 2, 3] * 8 + [0] * 8 + [2, 1, 3] * 8)  # two sessions that begin with rest
    groups = np.repeat([1, 2], 32)
    test = np.arange(64)
    bufs = bench.buffers(test, groups, labels, 0.25)
    np.testing.assert_array_equal(bufs["first trials"], np.r_[0:8, 32:40])  # all rest: what a lab gets here
    assert set(labels[bufs["one class"]]) == {0} and len(bufs["one class"]) == 16
    balanced = labels[bufs["balanced"]]
    assert all((balanced == c).sum() == 4 for c in range(4))  # 2 of each class per session


@pytest.mark.skipif(not SSVEP_EXO.is_dir(), reason=f"real SSVEP Exo data not at {SSVEP_EXO}")
def test_the_covariance_pipeline_re_centres_each_real_test_session_on_its_own_buffer():
    from bci_stream.contract.preprocessing import FilterDesign, Preprocessing
    from offline_training.datasets import load_trials
    from offline_training.experiments.protocols import make_folds

    bench = load_tool("bench_adaptation")
    pre = Preprocessing(filters=(FilterDesign(kind="bandpass", freqs=(5.0, 45.0)),))
    trials = load_trials(f"mne:{SSVEP_EXO}/subject01,event_id=1:rest;2:13Hz;3:21Hz;4:17Hz,tmin=1,tmax=4", progress=False,
                         preprocessing=pre)
    fold = make_folds(trials, "cross-session", group="session")[0]
    bufs = bench.buffers(fold.test, trials.sessions, trials.labels, 0.25)
    probs = bench.reference_variants("fbcov+ts+lr", trials, fold, trials.sessions, bufs, None)
    assert set(probs) == set(bench.VARIANTS)
    for variant, p in probs.items():
        assert p.shape == (len(fold.test), 4) and np.allclose(p.sum(1), 1), variant
    assert not np.allclose(probs["none"], probs["balanced"])  # the re-centring changed the decisions
    np.testing.assert_allclose(probs["first trials"], probs["one class"])  # this set's sessions begin with 8 rest trials
