"""The front door: `make demo`'s headless path on the shipped model, and the bci-stream CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bci_stream.cli import main as bci_stream
from bci_stream.model_card import ModelCard
from bci_stream.resources import DEMO_MODEL

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
