"""The model zoo's folder, ``models/<name>/``: each model's card (the JSON its ONNX file carries),
its report (the run's markdown with the measured figures) and metrics. One home for the build
scripts (``tools/build_*_model.py``); ``tests/test_models_zoo.py`` checks the cards never drift
from the ONNX files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "models"


def onnx_card(onnx_path: str | Path) -> dict:
    """The card as ``onnx_path`` carries it (its ``metadata_props`` JSON, read through ONNX Runtime)."""
    import onnxruntime as ort

    from bci_stream.contract.model_card import CARD_KEY

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    return json.loads(session.get_modelmeta().custom_metadata_map[CARD_KEY])


def write_entry(name: str, onnx_path: str | Path, run_files: str | Path, out: Path = MODELS_DIR) -> Path:
    """Write ``out/<name>/card.json`` from ``onnx_path`` and copy ``report.md`` and ``metrics.json`` from
    the folder ``run_files`` (the plots stay beside the run: the zoo holds text). Returns the entry's folder."""
    entry = Path(out) / name
    entry.mkdir(parents=True, exist_ok=True)
    (entry / "card.json").write_text(json.dumps(onnx_card(onnx_path), indent=1) + "\n")
    for file in ("report.md", "metrics.json"):
        if (Path(run_files) / file).is_file():
            shutil.copyfile(Path(run_files) / file, entry / file)
    return entry
