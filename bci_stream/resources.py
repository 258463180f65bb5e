"""Files shipped inside the package (so `pip install` users have them): the demo model and its report."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
DEMO_MODEL_DIR = DATA_DIR / "demo"
DEMO_MODEL = DEMO_MODEL_DIR / "model.onnx"


def model_path(text: str) -> str:
    """A ``--model`` argument: ``demo`` names the shipped demo model, anything else is a path."""
    return str(DEMO_MODEL) if text == "demo" else text
