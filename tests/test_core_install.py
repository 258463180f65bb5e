"""The core install alone (no torch, Qt, MNE): a fresh venv decodes the phantom with the demo model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_core_install_is_small_and_decodes_live(tmp_path):
    out = tmp_path / "core.json"
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "check_core_install.py"), "--json", str(out),
                          "--keep", str(tmp_path / "core")], capture_output=True, text=True, timeout=600)
    offline = run.returncode != 0 and "pip" in run.stderr and ("Could not find" in run.stderr or "Network" in run.stderr)
    if offline and os.environ.get("BCI_STREAM_OFFLINE") == "1":  # a skip only when asked for: offline CI fails here
        pytest.skip(f"BCI_STREAM_OFFLINE=1 and no package index reachable: {run.stderr.strip()[-300:]}")
    assert not offline, "no package index reachable for the fresh venv; BCI_STREAM_OFFLINE=1 skips this check"
    figures = json.loads(out.read_text()) if out.exists() else {}
    assert run.returncode == 0, run.stdout + run.stderr
    assert figures["venv_mb"] <= 600 and figures["heavy_packages"] == []
    assert figures["live_rc"] == 0 and not figures["live_summary"].startswith("0 decisions")
    assert figures["info_rc"] == 0
