"""The front door: `make demo`'s headless path on the shipped model, and the bci-stream CLI."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bci_stream.cli import main as bci_stream
from bci_stream.contract.model_card import ModelCard
from bci_stream.resources import DEMO_MODEL, REAL_DEMO_DIR, REAL_DEMO_MODEL, REAL_DEMO_RECORDING

ROOT = Path(__file__).resolve().parents[1]
DEMO = DEMO_MODEL


def test_shipped_demo_model_has_a_complete_card():
    card = ModelCard.from_onnx(DEMO)
    assert card.n_channels == 128 and card.sfreq == 1000.0 and card.n_classes == 40
    assert card.class_names[0] == "sorrel" and card.split == "by-image"
    assert {"top1", "top5", "oracle_top1"} <= set(card.evaluation)
    assert card.feature_kind == "erp" and card.feature_shape() == (128, 1, 50)  # Deep4Net on the erp features: (440 - 41) // 8 + 1
    assert DEMO.stat().st_size < 5e6


def test_demo_runs_headless_and_decodes(tmp_path):
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    out = subprocess.run([sys.executable, "-m", "bci_stream.demo", "--seconds", "4", "--renderer", "none"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if "latency" in line and line.startswith("#")]
    assert len(lines) >= 5, out.stdout[-2000:]
    assert "lost samples 0" in out.stdout


def test_the_real_demo_ships_a_licensed_recording_and_a_model_that_never_saw_it():
    card = ModelCard.from_onnx(REAL_DEMO_MODEL)
    assert card.class_names == ["house", "face"] and card.ch_names == ["TP9", "AF7", "AF8", "TP10"]
    assert card.sfreq == 256.0 and card.signal_unit == "uV"
    assert "BSD" in (REAL_DEMO_DIR / "LICENSE").read_text()
    assert REAL_DEMO_RECORDING.name not in card.training_data  # trained on the subject's OTHER recordings
    assert "N170/subject1" in card.training_data and REAL_DEMO_RECORDING.stat().st_size < 2e6


def test_real_demo_replays_the_shipped_recording_and_scores_each_picture(tmp_path):
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    out = subprocess.run([sys.executable, "-m", "bci_stream.demo", "--real", "--seconds", "8"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    shown = [line for line in out.stdout.splitlines() if line.startswith("#") and " shown " in line]
    assert len(shown) >= 5, out.stdout[-2000:]
    assert all(re.search(r"shown +(face|house) -> decoded +(face|house) ", line) for line in shown), shown
    assert "lost samples 0" in out.stdout and "a REAL recording" in out.stdout
    assert "event mode:" in out.stdout and "top-5" not in out.stdout.split("event mode:")[-1]


def test_info_prints_the_card(capsys, tiny_model):
    assert bci_stream(["info", str(tiny_model)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["sfreq"] == 1000.0 and shown["split"] == "by-image" and "input shape" in shown
    assert shown["output"].startswith("probabilities over")


def test_info_says_an_embedding_model_decides_by_retrieval(capsys, tiny_embedding_model):
    assert bci_stream(["info", str(tiny_embedding_model)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["output_kind"] == "embedding" and "gallery index" in shown["output"]
    assert shown["embedding"]["space"] in shown["output"]


def test_live_refuses_a_model_without_card(tmp_path, capsys):
    import onnx

    model = onnx.load(str(DEMO))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    assert bci_stream(["live", "--model", str(tmp_path / "bare.onnx"), "--headless", "--renderer", "none"]) == 2
    assert "no bci-stream model card" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["simulate", "--duration", "0.5", "--channels", "8", "--name"]])
def test_simulate_command_streams_for_its_duration(argv, capsys):
    import uuid

    assert bci_stream(argv + [f"sim-{uuid.uuid4().hex[:8]}"]) == 0
    assert "sent 500 samples" in capsys.readouterr().out
