"""Files shipped inside the package (so `pip install` users have them): the demo model and its report."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
DEMO_MODEL_DIR = DATA_DIR / "demo"
DEMO_MODEL = DEMO_MODEL_DIR / "model.onnx"
# The real-brain demo (``python -m bci_stream.demo --real``): one eeg-notebooks Muse faces-vs-houses
# recording (BSD-3-Clause, LICENSE beside it) and a model trained on that subject's other recordings
# (``tools/build_real_demo_model.py``).
REAL_DEMO_DIR = DATA_DIR / "real"
REAL_DEMO_RECORDING = REAL_DEMO_DIR / "data_2017-09-13-15.45.08.csv"
REAL_DEMO_MODEL = REAL_DEMO_DIR / "faces_houses.onnx"
REAL_DEMO_EVENTS = "1:house;2:face"  # eeg-notebooks' N170 marker codes


def model_path(text: str) -> str:
    """A ``--model`` argument: ``demo`` names the shipped demo model, anything else is a path."""
    return str(DEMO_MODEL) if text == "demo" else text


def has_display() -> bool:
    """A screen people can see: X11, Wayland, or a Qt platform plugin other than ``offscreen``/``minimal``
    (one home for the demo and ``bci-stream live``; the latter also opens an offscreen window when
    ``QT_QPA_PLATFORM=offscreen`` is set on purpose, for screenshots and tests)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or (platform and platform not in ("offscreen", "minimal")))
