"""Files shipped inside the package (so `pip install` users have them): the demo model and its report."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
DEMO_MODEL_DIR = DATA_DIR / "demo"
DEMO_MODEL = DEMO_MODEL_DIR / "model.onnx"


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
