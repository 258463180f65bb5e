"""Artifact stages (:mod:`bci_stream.contract.artifacts`) on real recordings: bad-channel repair by MNE's
spherical splines and meegkit's ASR, the same offline and live (a real recording with an injected
flat electrode replayed over real LSL), the ASR state in the model card, both off by default.
Skipped when ``../shared/data/real`` is absent."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bci_stream.contract.artifacts import (
    ArtifactChain,
    ArtifactError,
    CausalAsr,
    ChannelRepair,
    RepairConfig,
    artifacts_continuous,
    build_chain,
    calibrate_asr,
    interpolation_matrix,
)
from bci_stream.contract.model_card import ModelCard, ModelCardError
from bci_stream.contract.montage import channel_positions, standard_channel_names
from bci_stream.contract.preprocessing import (
    CausalPreprocessor,
    FilterDesign,
    Preprocessing,
    preprocess_continuous,
)
from bci_stream.io import read_recording
from bci_stream.live.config import LiveConfig
from bci_stream.live.sinks import CallbackSink

REAL = Path(__file__).resolve().parents[1].parent / "shared/data/real"
SSVEP = REAL / "ssvep_exo/subject01"
SSVEP_EVENTS = "event_id=1:rest;2:13Hz;3:21Hz;4:17Hz"
real = pytest.mark.skipif(not SSVEP.is_dir(), reason=f"the real data sets are not at {REAL} (../shared/data/real)")
BAND = Preprocessing(filters=(FilterDesign(kind="bandpass", freqs=(5.0, 45.0)),))
FLAT = ("O1", 20 * 256, 50 * 256)  # the electrode that drops out, from/to sample


def chunked(stage, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """``stage.process`` over ``x`` ``(n_times, n_ch)`` in random chunks of 1-40 samples, as LSL delivers."""
    rng, parts, i = np.random.default_rng(seed), [], 0
    while i < len(x):
        n = int(rng.integers(1, 41))
        parts.append(np.asarray(stage.process(x[i : i + n]), np.float64))
        i += n
    return np.concatenate(parts)


def close(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference relative to the data's magnitude (float32 rounding is ~6e-8 of it)."""
    scale = float(np.nanmax(np.abs(b)))
    same_nan = np.array_equal(np.isnan(a), np.isnan(b))
    return float(np.nanmax(np.abs(a - b)) / scale) if same_nan else np.inf


@pytest.fixture(scope="module")
def sessions():
    return [read_recording(p, event_id=SSVEP_EVENTS.split("=", 1)[1]) for p in sorted(SSVEP.glob("*_raw.fif"))]


def with_flat(recording) -> np.ndarray:
    data = recording.data.copy()
    ch, a, b = FLAT
    i = recording.ch_names.index(ch)
    data[i, a:b] = data[i, a]  # the amplifier holds the last value
    return data


def test_the_interpolation_matrix_reproduces_a_channel_of_a_smooth_field():
    names = standard_channel_names(32)
    pos = channel_positions(names)
    m = interpolation_matrix(tuple(names), ("Oz", "C3"))
    good = [i for i, n in enumerate(names) if n not in ("Oz", "C3")]
    assert np.array_equal(m[good][:, good], np.eye(len(good)))  # good channels pass unchanged
    assert np.allclose(m.sum(axis=1), 1.0, atol=1e-6)  # a constant potential is reproduced
    field = 50.0 * pos[:, 0] / 0.09 + 20.0 * pos[:, 1] / 0.09 + 10.0  # a smooth potential over the scalp, µV
    out = m @ field
    for name in ("Oz", "C3"):
        i = names.index(name)
        assert abs(out[i] - field[i]) < 0.1 * np.ptp(field), f"{name}: {out[i]:.1f} vs {field[i]:.1f} µV"
    with pytest.raises(ArtifactError, match="10-05"):
        interpolation_matrix(("Oz", "O1", "O2", "Cz", "X9"), ("Oz",))


@real
def test_a_flat_electrode_is_found_within_a_block_repaired_and_clean_again_after_hysteresis(sessions):
    rec = sessions[1]
    data = with_flat(rec)
    repair = ChannelRepair(RepairConfig(mode="repair"), rec.ch_names, rec.sfreq)
    whole = repair.process(data.T)
    found = [c for c in repair.changes if c.get("channel") == "O1"]
    assert len(repair.changes) == 2, repair.changes  # one episode on the dropped channel, nothing on the others
    assert found[0]["bad"] and found[0]["reason"] == "flat"
    assert FLAT[1] < found[0]["sample"] <= FLAT[1] + 3 * repair.block  # its verdict holds from the block after next
    assert not found[1]["bad"] and FLAT[2] < found[1]["sample"] <= FLAT[2] + repair.span + (repair.clear_checks + 2) * repair.block
    i = rec.ch_names.index("O1")
    m = interpolation_matrix(tuple(rec.ch_names), ("O1",))
    inside = slice(found[0]["sample"], FLAT[2])
    expected = data.T[inside] @ m[i]  # the spline of its neighbours (float64: summation order aside, equal)
    assert np.allclose(whole[inside, i], expected, rtol=0, atol=1e-10 * np.abs(data).max())
    others = [k for k in range(len(rec.ch_names)) if k != i]
    assert np.array_equal(whole[:, others], data.T[:, others])  # the good channels are untouched
    fresh = ChannelRepair(RepairConfig(mode="repair"), rec.ch_names, rec.sfreq)
    assert close(chunked(fresh, data.T), whole) <= 1e-12  # LSL's chunks give the same samples


@real
def test_withhold_mode_and_too_many_bad_channels_make_the_window_non_finite(sessions):
    rec = sessions[1]
    data = with_flat(rec)
    withhold = artifacts_continuous(BAND, data, rec.ch_names, rec.sfreq, RepairConfig(mode="withhold"))
    i = rec.ch_names.index("O1")
    assert np.isnan(withhold[i, FLAT[1] + 600 : FLAT[2]]).all() and np.isfinite(withhold[:, : FLAT[1]]).all()
    assert np.isfinite(np.delete(withhold, i, axis=0)[:, FLAT[1] : FLAT[2]]).all()  # no average reference here
    data[rec.ch_names.index("O2"), FLAT[1] : FLAT[2]] = 0.0
    capped = artifacts_continuous(BAND, data, rec.ch_names, rec.sfreq, RepairConfig(mode="repair", max_bad=1))
    assert np.isnan(capped[i, FLAT[1] + 600 : FLAT[2]]).all()
    repaired = artifacts_continuous(BAND, data, rec.ch_names, rec.sfreq, RepairConfig(mode="repair", max_bad=2))
    assert np.isfinite(repaired).all()


@pytest.fixture(scope="module")
def asr_state(sessions):
    rec = sessions[0]
    clean = preprocess_continuous(BAND, rec.data, rec.ch_names, rec.sfreq)
    return calibrate_asr(clean, rec.ch_names, rec.sfreq, cutoff=40.0)


@real
def test_asr_is_causal_and_the_same_in_any_chunks_and_removes_an_injected_blink(sessions, asr_state):
    rec = sessions[1]
    clean = preprocess_continuous(BAND, rec.data[:, : 60 * 256], rec.ch_names, rec.sfreq).T.astype(np.float64)
    t = np.arange(int(0.4 * 256)) / 256
    blink = 40 * clean.std() * np.sin(np.pi * t / 0.4) ** 2  # far above the calibration's spread on every channel
    dirty = clean.copy()
    dirty[30 * 256 : 30 * 256 + len(t)] += blink[:, None] * np.linspace(1, 0.5, clean.shape[1])
    whole = CausalAsr(asr_state).process(dirty)
    assert close(chunked(CausalAsr(asr_state), dirty), whole) <= 1e-9
    assert np.array_equal(CausalAsr(asr_state).process(dirty[: 30 * 256]), whole[: 30 * 256]) or \
        close(CausalAsr(asr_state).process(dirty[: 30 * 256]), whole[: 30 * 256]) <= 1e-12  # no look-ahead
    seg = slice(30 * 256, 30 * 256 + len(t))
    before = np.abs(dirty[seg] - clean[seg]).mean()
    after = np.abs(whole[seg] - clean[seg]).mean()
    assert after < 0.5 * before, f"ASR left {after / before:.0%} of the blink"  # it reacts 2-3 blocks late
    quiet = slice(5 * 256, 25 * 256)
    assert np.abs(whole[quiet] - clean[quiet]).mean() < 0.05 * np.abs(clean[quiet]).mean()  # clean data pass


def card_with(artifacts: dict, ch_names: list[str]) -> ModelCard:
    from bci_stream.contract.features import SpectrogramConfig

    return ModelCard(sfreq=256.0, ch_names=list(ch_names), class_ids=["a", "b"], class_names=["a", "b"],
                     spectrogram=SpectrogramConfig(sfreq=256.0), artifacts=artifacts,
                     preprocessing=BAND.to_dict(256.0))


@real
def test_the_asr_state_round_trips_through_the_card_and_a_card_that_does_not_fit_is_refused(sessions, asr_state):
    names = sessions[0].ch_names
    card = card_with({"asr": asr_state.to_dict()}, names)
    again = ModelCard.from_json(card.to_json())
    assert again.asr_state() == asr_state and again.artifacts == card.artifacts
    assert np.array_equal(np.asarray(again.asr_state().mixing), np.asarray(asr_state.mixing))
    with pytest.raises(ModelCardError, match="ASR state is for channels"):
        card_with({"asr": asr_state.to_dict()}, names[::-1])
    bad = asr_state.to_dict()
    bad["threshold"] = bad["threshold"][:-1]
    with pytest.raises(ModelCardError, match="threshold matrix"):
        card_with({"asr": bad}, names)
    with pytest.raises(ModelCardError, match="runs at 128 Hz"):
        card_with({"asr": {**asr_state.to_dict(), "sfreq": 128.0}}, names)
    with pytest.raises(ModelCardError, match="unknown fields"):
        card_with({"asr": asr_state.to_dict(), "ica": {}}, names)


def test_both_stages_are_off_by_default():
    names = standard_channel_names(8)
    assert LiveConfig().bad_channels == RepairConfig() and RepairConfig().mode == "off"
    chain = CausalPreprocessor(BAND, names, 256.0)
    assert build_chain(chain, names) is chain  # the default live path is the plain chain, untouched
    card = card_with({}, names)
    assert card.artifacts == {} and card.asr_state() is None
    assert ModelCard.from_json(card.to_json()).artifacts == {}
    assert isinstance(build_chain(chain, names, RepairConfig(mode="withhold")), ArtifactChain)
    with pytest.raises(ArtifactError, match="volts"):
        build_chain(chain, names, RepairConfig(mode="repair"), unit="a.u.")


@pytest.fixture(scope="module")
def asr_model(tmp_path_factory):
    """``bci-train fit --asr`` on subject 1's first SSVEP session (the second is replayed), exported."""
    from offline_training.cli import main as bci_train

    run = tmp_path_factory.mktemp("asr")
    first = sorted(SSVEP.glob("*_raw.fif"))[0]
    assert bci_train(["fit", "--data", f"mne:{first},{SSVEP_EVENTS},tmin=1,tmax=4", "--out", str(run / "run"),
                      "--no-kd", "--epochs", "2", "--threads", "1", "--seed", "0", "--student", "shallow",
                      "--window", "1", "3", "--bandpass", "5", "45", "--asr", "40"]) == 0
    assert bci_train(["export", str(run / "run"), "--out", str(run / "model.onnx")]) == 0
    return run / "model.onnx"


@real
def test_live_repair_and_asr_over_real_lsl_equal_the_offline_path(asr_model, sessions, stream_name, tmp_path):
    """A real recording with a flat electrode replayed over LSL: every window the live decoder classifies,
    the interpolated ones included, equals the offline chain's (same code over the whole recording)."""
    import json
    from dataclasses import replace

    from bci_stream.live.decoder import Decoder
    from bci_stream.live.session import LiveSession
    from bci_stream.sources.replay import recording_pusher
    from bci_stream.sources.simulate import OutletConfig

    rec = sessions[1]
    n = 70 * 256
    rec = replace(rec, data=np.ascontiguousarray(with_flat(rec)[:, :n]), events=[e for e in rec.events if e[0] < n])
    decoder = Decoder(asr_model, providers="cpu")
    card = decoder.card
    assert card.asr_state() is not None and card.asr_state().cutoff == 40.0  # fit --asr put it in the card
    w = card.window_samples
    live = []
    log = tmp_path / "session.jsonl"
    repair = RepairConfig(mode="repair")
    session = LiveSession(decoder, LiveConfig(stream=stream_name, mode="continuous", bad_channels=repair, log_path=log))
    session.sinks.append(CallbackSink(lambda p: live.append((p.window_end_sample, p.probabilities.copy(),
                                                    session.ring.window(p.window_end_sample, w)[0].T.copy()))))
    pusher = recording_pusher(rec, OutletConfig(name=stream_name, source_id=stream_name, counter=True), speed=4.0)
    session.start()
    runner = threading.Thread(target=session.run, kwargs={"seconds": rec.duration / 4 + 30})
    runner.start()
    pusher.start()
    deadline = time.monotonic() + rec.duration / 4 + 30
    while (not live or live[-1][0] < n - 256) and time.monotonic() < deadline:
        time.sleep(0.05)
    session.stop()
    runner.join()
    pusher.close()

    assert session.source.lost_samples == 0 and len(live) > 100
    order = [rec.ch_names.index(c) for c in card.ch_names]
    offline = artifacts_continuous(card.preprocessing_spec(), rec.data[order], list(card.ch_names), rec.sfreq,
                                   repair, card.asr_state(), card.signal_unit)
    repaired = [x for x in live if FLAT[1] + 600 + w < x[0] <= FLAT[2]]
    assert len(repaired) > 20, "decisions on windows with the interpolated electrode"
    worst = max(close(window, offline[:, end - w : end]) for end, _, window in live)
    assert worst <= 1e-5, f"live windows differ from the offline chain's by {worst:.1e} of their range"
    probs = max(float(np.abs(Decoder(asr_model, providers="cpu").classify(np.ascontiguousarray(offline[:, e - w : e]))
                             - p).max()) for e, p, _ in repaired[::5])
    assert probs <= 1e-5
    records = [json.loads(line) for line in log.read_text().splitlines()]
    start = next(r for r in records if r.get("event") == "session_start")
    assert start["artifacts"]["asr"].startswith("ASR") and start["artifacts"]["bad_channels"].startswith("interpolate")
    changes = [r for r in records if r.get("event") == "channel_repair"]
    assert [(r["channel"], r["interpolated"]) for r in changes][:2] == [("O1", True), ("O1", False)]


@real
def test_fit_asr_refuses_epoch_data_and_an_unfiltered_chain_in_one_line(tmp_path, capsys):
    from offline_training.cli import main as bci_train

    first = sorted(SSVEP.glob("*_raw.fif"))[0]
    for data, extra, said in (("phantom:subjects=1,classes=2,images=2", [], "needs continuous recordings"),
                              (f"mne:{first},{SSVEP_EVENTS},tmin=1,tmax=4", [], "needs high-passed data")):
        assert bci_train(["fit", "--data", data, "--out", str(tmp_path / "run"), "--asr", "20", *extra]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err


@real
def test_info_names_the_models_asr(asr_model, capsys):
    from bci_stream.cli import main as bci_stream

    assert bci_stream(["info", str(asr_model)]) == 0
    out = capsys.readouterr().out
    assert "ASR (meegkit, cutoff 40 SD" in out and "mixing" not in out  # said in a line, not its matrices
