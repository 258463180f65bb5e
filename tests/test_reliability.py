"""The fault matrix of issue 11: full disks, NaN in JSON, bad options, cut and hostile files, odd
errors, a sample counter past 2**24. Each test fails on the code before its fix."""

import argparse
import json
import os
import time

import numpy as np
import pylsl
import pytest
import torch

from bci_stream.cli import build_parser
from bci_stream.cli import main as bci_stream
from bci_stream.commands._types import (
    float_range,
    int_range,
    non_negative_float,
    positive_float,
    positive_int,
)
from bci_stream.contract.card_checks import check_card_fits_network, validate_card_numbers
from bci_stream.errors import error_line
from bci_stream.io import RecordingError, read_recording
from bci_stream.io.eegimagenet import load_eegimagenet
from bci_stream.live.prediction import Prediction
from bci_stream.live.session_log import JsonlLog, LogOpenError
from bci_stream.live.state import SharedState
from bci_stream.lsl.inlet import LSLSource, SourceConfig
from bci_stream.sources.simulate import OutletConfig, PacedPusher, phantom_pusher

NAMES = ["a", "b", "c"]


def strict_lines(path) -> list[dict]:
    """Every line of a JSONL file parsed strictly (a bare NaN or a cut line fails)."""
    def refuse(name):
        raise ValueError(f"non-JSON constant {name}")

    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the file ends in a cut line"
    return [json.loads(line, parse_constant=refuse) for line in text.splitlines()]


def prediction(i: int, probs=(0.7, 0.2, 0.1)) -> Prediction:
    p = np.asarray(probs, dtype=np.float64)
    return Prediction(t_lsl=float(i), t_emitted=float(i) + 0.001, probabilities=p, top5=[0, 1, 2],
                      window_end_sample=i, latency_ms=1.0)


# --- 1. the JSONL log on a full disk --------------------------------------------------------------
def test_log_on_a_full_disk_reports_bounds_its_queue_and_never_raises():
    errors = []
    log = JsonlLog("/dev/full", NAMES, flush_every=0.02, on_error=errors.append, max_queue=100, retry_every=0.05)
    for i in range(5000):  # ~100 s of decisions at 50/s, far more than the queue holds
        log.push(prediction(i))
    time.sleep(0.15)
    assert len(log._queue) <= 100 and len(log._pending) <= 100  # memory stays flat
    assert log.failed and "No space left on device" in log.error
    assert len(errors) == 1 and "No space left" in errors[0]  # reported once, not per record
    log.close()  # never raises
    log.close()  # and twice is fine
    assert log.dropped >= 4900 and log.written == 0
    assert "lost" in errors[-1]


def test_log_recovers_when_the_disk_has_room_again_and_keeps_whole_lines(tmp_path):
    path = tmp_path / "s.jsonl"
    state = SharedState()
    log = JsonlLog(path, NAMES, flush_every=0.02, on_error=state.report_log_error, retry_every=0.05)
    log.push(prediction(0))
    time.sleep(0.1)
    saved = os.dup(log._fd)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, log._fd)  # the disk fills: the same descriptor now fails with ENOSPC
    for i in range(1, 20):
        log.push(prediction(i))
    time.sleep(0.15)
    assert log.error and state.log_error
    os.dup2(saved, log._fd)  # room again
    for i in range(20, 30):
        log.push(prediction(i))
    time.sleep(0.2)
    assert not log.error and state.log_error == ""  # recovered with nothing lost: the warning clears
    log.close()
    records = strict_lines(path)
    assert [r["window_end_sample"] for r in records] == list(range(30))  # kept and retried, in order
    assert log.dropped == 0 and log.written == 30


def test_non_finite_values_are_written_as_null_never_bare_nan(tmp_path):
    log = JsonlLog(tmp_path / "n.jsonl", NAMES, flush_every=0.02)
    log.push(prediction(1, probs=(np.nan, np.inf, 0.5)))
    log.event("withheld", value=float("-inf"), nested={"x": [1.0, float("nan")]})
    log.close()
    first, second = strict_lines(tmp_path / "n.jsonl")
    assert first["probabilities"] == [None, None, 0.5]
    assert second["value"] is None and second["nested"] == {"x": [1.0, None]}


def test_log_to_a_folder_is_one_clear_error(tmp_path):
    with pytest.raises(LogOpenError, match="cannot write the session log"):
        JsonlLog(tmp_path, NAMES)


def test_live_with_log_on_a_full_disk_keeps_decoding_and_exits_3(tiny_model, tiny_phantom_config, stream_name,
                                                                capsys):
    pusher = phantom_pusher(tiny_phantom_config, OutletConfig(name=stream_name, source_id=stream_name)).start()
    try:
        rc = bci_stream(["live", "--model", str(tiny_model), "--stream", stream_name, "--headless", "--renderer",
                         "none", "--seconds", "1.5", "--log", "/dev/full", "--providers", "cpu"])
    finally:
        pusher.close()
    out, err = capsys.readouterr()
    assert rc == 3
    n_decisions = int(out.strip().splitlines()[-1].split()[0])
    assert n_decisions > 20  # decoding went on
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "No space left on device" in err and "lost" in err


def test_live_with_log_in_a_folder_is_one_line_rc_2(tiny_model, tmp_path, capsys):
    rc = bci_stream(["live", "--model", str(tiny_model), "--headless", "--renderer", "none", "--log", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "cannot write the session log" in err


# --- 5. bad options ---------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, option", [
    (["simulate", "--sfreq", "0"], "--sfreq"), (["simulate", "--sfreq", "-100"], "--sfreq"),
    (["simulate", "--classes", "0"], "--classes"), (["simulate", "--classes", "100"], "--classes"),
    (["simulate", "--channels", "0"], "--channels"), (["simulate", "--isi", "0"], "--isi"),
    (["simulate", "--duration", "-1"], "--seconds/--duration"), (["simulate", "--chunk", "0"], "--chunk"),
    (["simulate", "--subject", "7"], "--subject"), (["simulate", "--session", "-1"], "--session"),
    (["simulate", "--sfreq", "nan"], "--sfreq"), (["simulate", "--duration", "inf"], "--seconds/--duration"),
    (["replay", "x.xdf", "--speed", "0"], "--speed"), (["replay", "x.xdf", "--chunk", "-0.01"], "--chunk"),
    (["replay", "x.xdf", "--seconds", "0"], "--seconds/--duration"), (["replay", "x.xdf", "--subject", "0"], "--subject"),
])
def test_bad_numeric_options_are_refused_by_name(argv, option, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


def test_validators_accept_good_values_and_name_the_rule():
    assert positive_float("0.05") == 0.05 and positive_int("3") == 3 and non_negative_float("0") == 0.0
    assert int_range(1, 40)("40") == 40 and float_range(0, 1, low_open=True)("1") == 1.0
    for parse, text, rule in [(positive_float, "-0.05", "> 0"), (positive_float, "0", "> 0"),
                              (positive_int, "0", ">= 1"), (positive_int, "2.5", "integer"),
                              (non_negative_float, "-1", ">= 0"), (int_range(1, 40), "100", "1..40"),
                              (float_range(0, 1, low_open=True), "0", "(0, 1]")]:
        with pytest.raises(argparse.ArgumentTypeError, match=rf".*{__import__('re').escape(rule)}"):
            parse(text)


# --- 9. unexpected exception types: one line, -v for the traceback ----------------------------------
@pytest.mark.parametrize("error, rc", [(TypeError("unsupported operand"), 1), (IndexError("list index"), 1),
                                       (ZeroDivisionError("division by zero"), 1), (MemoryError(), 2),
                                       (IsADirectoryError(21, "Is a directory", "runs/"), 2),
                                       (OSError(28, "No space left on device"), 2)])
def test_any_error_is_one_line_and_verbose_keeps_the_traceback(monkeypatch, capsys, error, rc):
    def boom(args):
        raise error

    monkeypatch.setattr("bci_stream.commands.info.run", boom)
    assert bci_stream(["info", "m.onnx"]) == rc
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("bci-stream info: error: ")
    assert bci_stream(["-v", "info", "m.onnx"]) == rc
    assert "Traceback" in capsys.readouterr().err


def test_error_line_names_what_matters():
    assert error_line(IsADirectoryError(21, "Is a directory", "runs")) == "Is a directory: runs"
    assert error_line(KeyError("dataset")) == "KeyError: 'dataset'"
    assert error_line(ValueError("no model file at x")) == "no model file at x"
    assert error_line(MemoryError()).startswith("out of memory")


# --- 8. cut recordings fail loudly ------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".edf", ".bdf"])
def test_truncated_edf_and_bdf_fail_loudly(tmp_path, suffix):
    from test_recordings_replay import write_mne

    write_mne(tmp_path / f"whole{suffix}")
    data = (tmp_path / f"whole{suffix}").read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) * 2 // 3])
    assert read_recording(tmp_path / f"whole{suffix}").n_times == 2000
    with pytest.raises(RecordingError, match=r"truncated: 1 of 2 data records"):
        read_recording(tmp_path / f"cut{suffix}")


def test_truncated_xdf_fails_loudly_instead_of_losing_its_markers(tmp_path):
    from test_recordings_replay import CH, MARKERS, signal
    from xdf_writer import write_xdf

    data = write_xdf(tmp_path / "whole.xdf", signal(), 1000.0, CH, MARKERS).read_bytes()
    for fraction in (0.5, 0.9, 0.999):
        (tmp_path / "cut.xdf").write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(RecordingError, match="truncated"):
            read_recording(tmp_path / "cut.xdf")
    footer_at = data.rindex(b"<?xml") - 2 - 4 - 8 - 1  # tag, stream id, length, length-of-length
    (tmp_path / "open.xdf").write_bytes(data[:footer_at])  # cut exactly before the footer chunk
    with pytest.raises(RecordingError, match="not closed"):
        read_recording(tmp_path / "open.xdf")
    assert len(read_recording(tmp_path / "whole.xdf").events) == 3


# --- 10. load messages name the right cause -----------------------------------------------------------
def test_pth_messages_name_the_blocked_call_or_corruption(tmp_path, capsys):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo this must never run",))

    torch.save({"dataset": [Exploit()], "labels": [], "images": []}, tmp_path / "evil.pth")
    with pytest.raises(RecordingError) as hostile:
        load_eegimagenet(tmp_path / "evil.pth")
    assert "refused" in str(hostile.value) and "system" in str(hostile.value)
    assert "weights_only=False" not in str(hostile.value) and "weights_only` set to `False" not in str(hostile.value)
    (tmp_path / "noise.pth").write_bytes(np.random.default_rng(0).bytes(1000))
    good = tmp_path / "good.pth"
    torch.save({"dataset": [], "labels": [], "images": []}, good)
    (tmp_path / "cut.pth").write_bytes(good.read_bytes()[:200])
    for name in ("noise.pth", "cut.pth"):
        with pytest.raises(RecordingError, match="corrupt or unreadable") as corrupt:
            load_eegimagenet(tmp_path / name)
        assert "refused" not in str(corrupt.value)
    torch.save({"dataset": 5, "labels": [], "images": []}, tmp_path / "odd.pth")  # was a TypeError traceback
    assert bci_stream(["replay", str(tmp_path / "odd.pth")]) == 2
    err = capsys.readouterr().err
    assert "'dataset' is a int" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_path_looking_diffusion_model_is_a_missing_folder_not_a_hub_id():
    from bci_stream.render import RendererError
    from bci_stream.render.diffusion import load_text2image, looks_like_path

    with pytest.raises(RendererError, match="no diffusers folder at /nonexistent") as err:
        load_text2image("/nonexistent", device="cpu")
    assert "hf download" not in str(err.value)
    assert looks_like_path("./models/sd") and looks_like_path("a/b/c") and looks_like_path("~/sd")
    assert not looks_like_path("stabilityai/sd-turbo")


def test_renderer_errors_do_not_stutter():
    from bci_stream.render import RendererError
    from bci_stream.render.process import describe_error

    assert describe_error(RendererError("cannot load X")) == "cannot load X"
    assert describe_error(OSError("disk")) == "OSError: disk"


# --- 7. card numbers and the network ----------------------------------------------------------------
def test_card_numbers_out_of_range_are_listed(tiny_model):
    from dataclasses import replace

    from bci_stream.live.decoder import Decoder

    decoder = Decoder(tiny_model, providers="cpu")
    card = decoder.card
    assert validate_card_numbers(card) == [] and check_card_fits_network(card, decoder.session) == []
    n_ch, n_f, _ = card.feature_shape()
    bad = {
        "sfreq": dict(sfreq=0.0), "window_length": dict(window_length=-0.44),
        "window_length ": dict(window_length=1e6), "window_offset": dict(window_offset=float("nan")),
        "hop": dict(hop=0.0), "signal_scale": dict(signal_scale=float("nan")),
        "norm_std": dict(norm_std=[[0.0] * n_f] * n_ch), "norm_mean": dict(norm_mean=[[float("inf")] * n_f] * n_ch),
    }
    for field, change in bad.items():
        problems = validate_card_numbers(SimpleCard(card, **change))
        assert problems and field.strip() in problems[0], (field, problems)
    wider = replace(card, ch_names=card.ch_names + ["EXTRA"], spectrogram=card.spectrogram, norm_mean=None,
                    norm_std=None)
    assert "do not belong together" in check_card_fits_network(wider, decoder.session)[0]


class SimpleCard:
    """A card's attributes with some changed, without the card's own checks (what a hostile JSON gives)."""

    def __init__(self, card, **changes):
        for name in card.__dataclass_fields__:
            setattr(self, name, changes.get(name, getattr(card, name)))


def test_an_empty_onnx_file_is_called_empty_not_cardless(tmp_path, capsys):
    (tmp_path / "empty.onnx").write_bytes(b"")
    rc = bci_stream(["live", "--model", str(tmp_path / "empty.onnx"), "--headless", "--renderer", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and "is empty (0 bytes)" in err and "model card" not in err


# --- 11. a sample counter exact beyond 2**24 ----------------------------------------------------------
def test_sample_counter_is_exact_beyond_2_to_the_24(stream_name):
    start = 2**24 - 300  # a float32 counter can no longer tell 2**24 + 1 from 2**24
    names = ["O1", "Oz"]

    def read(n):
        return np.zeros((2, n), np.float32) + np.arange(n, dtype=np.float32), []

    pusher = PacedPusher(read, 2, 1000.0, OutletConfig(name=stream_name, source_id=stream_name, counter=True), names)
    pusher.sent = start  # the counter's next value (pushed by hand below: the pacing clock starts at 0)
    source = LSLSource(names, 1000.0, SourceConfig(name=stream_name, resolve_timeout=5))
    try:
        assert source.connect()
        assert source.info.channel_format() == pylsl.cf_double64
        deadline = time.time() + 10
        while source._next_counter is None or source._next_counter < 2**24 + 700:
            for _ in range(10):
                pusher.push_once()
            # take everything pushed before pushing more: unpaced pushes on a loaded machine would
            # otherwise outrun the inlet's 2 s buffer, a loss this test is not about
            while (source._next_counter or 0) < pusher.sent and time.time() < deadline:
                source.pull(0.05)
            assert time.time() < deadline, "no samples past 2**24"
    finally:
        source.close()
        pusher.close()
    assert source.lost_samples == 0


# --- 3. no network at run time -------------------------------------------------------------------------
GUARD = r"""
import socket, sys
attempts = []
_connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo
def local(host):
    return host in ("localhost", "127.0.0.1", "::1") or str(host).startswith("127.")
def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
        attempts.append(f"connect {address}")
        raise OSError("network blocked by the test")
    return _connect(self, address)
def getaddrinfo(host, *args, **kwargs):
    if host is not None and not local(host):
        attempts.append(f"resolve {host}")
        raise socket.gaierror("network blocked by the test")
    return _getaddrinfo(host, *args, **kwargs)
socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
from bci_stream.render.diffusion import load_text2image
from bci_stream.render import RendererError
try:
    load_text2image("someone/not-in-the-cache", device="cpu")
except RendererError as err:
    print("hub id refused:", str(err)[:80])
pipe, _ = load_text2image(sys.argv[1], device="cpu")
print("folder loaded:", type(pipe).__name__)
print("ATTEMPTS", attempts)
"""


def test_loading_a_diffusion_model_opens_no_socket(tmp_path):
    import subprocess
    import sys

    from dummy_pipelines import build_tiny_pipeline

    folder = build_tiny_pipeline(tmp_path / "tiny-sd")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "DO_NOT_TRACK",
                                                                    "DISABLE_TELEMETRY"))}
    env["HF_HOME"] = str(tmp_path / "hf-home")  # no cached agent registry: huggingface_hub would fetch it
    env["AI_AGENT"] = "bci-stream-test"  # what makes huggingface_hub's agent detection look the harness up
    out = subprocess.run([sys.executable, "-c", GUARD, str(folder)], env=env, capture_output=True, text=True,
                         timeout=180, cwd=os.getcwd())
    assert out.returncode == 0, out.stderr[-2000:]
    assert "folder loaded: StableDiffusionPipeline" in out.stdout and "hub id refused" in out.stdout
    assert "ATTEMPTS []" in out.stdout, out.stdout


def test_cli_entry_sets_offline_mode_before_anything_imports_the_hub(monkeypatch):
    for key in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(SystemExit):
        bci_stream(["--help"])
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"
