"""liblsl configuration: keep discovery on this machine (tests, demos, benchmarks)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

LOOPBACK_CONFIG = """[ports]
IPv6 = disable

[multicast]
ResolveScope = machine

[lab]
KnownPeers = {127.0.0.1}
SessionID = bci-stream
"""


def use_loopback(directory: str | Path | None = None) -> Path:
    """Write an ``lsl_api.cfg`` that resolves streams on this machine only and point liblsl at it.

    Must run before the first LSL call of the process (liblsl reads its config once). Sets
    ``LSLAPICFG`` so that child processes and mne-lsl's bundled liblsl read the same file, and
    tells pylsl directly. Returns the config path.
    """
    directory = Path(directory or tempfile.mkdtemp(prefix="bci-stream-lsl-"))
    path = directory / "lsl_api.cfg"
    path.write_text(LOOPBACK_CONFIG)
    os.environ["LSLAPICFG"] = str(path)
    try:
        import pylsl

        pylsl.set_config_filename(str(path))
    except Exception:  # liblsl already initialised: the env var still reaches child processes
        pass
    return path
