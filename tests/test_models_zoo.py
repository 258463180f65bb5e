"""The model zoo (``models/``): every model in its table has a card equal to the one its ONNX file
carries (so the two cannot drift), the report's figure is the one in its metrics, and the command
that rebuilds it exists and writes that entry."""

import json
import re
from pathlib import Path

import onnxruntime as ort
import pytest

from bci_stream.contract.model_card import CARD_KEY
from bci_stream.resources import model_path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"


def zoo_rows() -> list[dict]:
    """The rows of the table in ``models/README.md``, keyed by its header."""
    lines = [line for line in (MODELS / "README.md").read_text().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True)) for line in lines[2:]]


def entry(row: dict) -> str:
    return re.fullmatch(r"\[(\w+)\]\(\w+/\)", row["model"]).group(1)


def ticked(cell: str) -> str:
    return re.search(r"`([^`]+)`", cell).group(1)


def onnx_card(path: Path) -> dict:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    return json.loads(session.get_modelmeta().custom_metadata_map[CARD_KEY])


def test_the_table_lists_every_folder_of_the_zoo():
    folders = {p.name for p in MODELS.iterdir() if p.is_dir()}
    assert folders == {entry(row) for row in zoo_rows()} and {"demo", "zero_shot", "faces_houses"} <= folders


@pytest.mark.parametrize("row", zoo_rows(), ids=entry)
def test_each_card_is_the_one_its_onnx_file_carries(row):
    onnx = ROOT / ticked(row["ONNX"])
    assert json.loads((MODELS / entry(row) / "card.json").read_text()) == onnx_card(onnx)


@pytest.mark.parametrize("row", zoo_rows(), ids=entry)
def test_each_figure_is_its_metrics_and_its_report_says_it(row):
    metrics = json.loads((MODELS / entry(row) / "metrics.json").read_text())
    lo, hi = metrics["top1_ci"]
    figure = f"top-1 {metrics['top1']:.3f} [{lo:.2f}, {hi:.2f}]"
    assert figure in row["figure [95 % CI]"] and metrics["split"] in row["split"], (figure, row)
    assert f"{metrics['top1']:.3f} [{lo:.2f}, {hi:.2f}]" in (MODELS / entry(row) / "report.md").read_text()


@pytest.mark.parametrize("row", zoo_rows(), ids=entry)
def test_each_rebuild_command_exists_and_writes_its_entry(row):
    command = ticked(row["rebuild"]).split()
    assert command[0] == "python" and command[1].startswith("tools/build_"), command
    script = (ROOT / command[1]).read_text()
    assert re.search(rf"""write_entry\((NAME|["']{entry(row)}["'])""", script), command
    assert f'NAME = "{entry(row)}"' in script or f'"{entry(row)}"' in script or f"'{entry(row)}'" in script


def test_the_shipped_demo_model_is_the_zoos_and_model_demo_finds_it():
    demo = next(row for row in zoo_rows() if entry(row) == "demo")
    assert Path(model_path("demo")).resolve() == (ROOT / ticked(demo["ONNX"])).resolve()
    assert ticked(demo["ONNX"]).startswith("bci_stream/data/")  # inside the package: pip ships it
