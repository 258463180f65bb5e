"""Real models with another card: an exported network whose card asks for other preprocessing
(what the live filter path needs to be exercised, without training again). Used by the tests and by
``tools/soak.py``."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from bci_stream.contract.model_card import ModelCard
from bci_stream.contract.preprocessing import FilterDesign, Preprocessing


def with_bandpass(model: str | Path, out: str | Path, low: float = 5.0, high: float = 45.0, order: int = 4) -> Path:
    """A copy of ``model`` at ``out`` whose card puts a causal Butterworth band-pass ``low``-``high``
    Hz (SOS stored, as ``bci-train --bandpass`` exports them) before its features. The network is
    the same: its decisions are not meant to be good, the signal path is what is exercised."""
    out = Path(out)
    shutil.copyfile(model, out)
    card = ModelCard.from_onnx(out)
    pre = Preprocessing(filters=(FilterDesign("bandpass", (low, high), order=order),))
    replace(card, preprocessing=pre.to_dict(card.input_sfreq)).save_into_onnx(out)
    return out
