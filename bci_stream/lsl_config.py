"""liblsl configuration: keep discovery on this machine (tests, demos, benchmarks), in a session of its own."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from pathlib import Path

LOOPBACK_CONFIG = """[ports]
IPv6 = disable

[multicast]
ResolveScope = machine

[lab]
KnownPeers = {{127.0.0.1}}
SessionID = {session}

[log]
level = -1
"""


def new_session_id() -> str:
    """A fresh liblsl session id: processes in other sessions never see this one's streams."""
    return f"bci-stream-{uuid.uuid4().hex[:8]}"


def use_loopback(directory: str | Path | None = None, session: str | None = None) -> Path:
    """Write an ``lsl_api.cfg`` that resolves streams on this machine only, in liblsl session
    ``session`` (default: a new one, so two runs never see each other's streams), and point liblsl
    at it; liblsl's log keeps to warnings and errors.

    Must run before the first LSL call of the process (liblsl reads its config once). Sets
    ``LSLAPICFG`` so that child processes and mne-lsl's bundled liblsl read the same file, and
    tells pylsl directly. Returns the config path.
    """
    if directory is None:  # ours: removed when this process exits (children it started have ended by then)
        directory = Path(tempfile.mkdtemp(prefix="bci-stream-lsl-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = Path(directory) / "lsl_api.cfg"
    path.write_text(LOOPBACK_CONFIG.format(session=session or new_session_id()))
    os.environ["LSLAPICFG"] = str(path)
    try:
        import pylsl

        pylsl.set_config_filename(str(path))
    except Exception:  # liblsl already initialised: the env var still reaches child processes
        pass
    return path


def session_of(path: str | Path) -> str | None:
    """The ``SessionID`` written in an ``lsl_api.cfg`` (None if it has none or cannot be read)."""
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "SessionID":
                return value.strip()
    except OSError:
        return None
    return None
