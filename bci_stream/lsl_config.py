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

[tuning]
{tuning}

[log]
level = -1
"""

# liblsl resolves in waves: a multicast burst, the unicast burst (KnownPeers) MulticastMinRTT s later,
# the next wave ContinuousResolveInterval + MulticastMinRTT + UnicastMinRTT s after (0.5 + 0.5 + 0.75 s
# by default: a stream that came back was found up to 1.75 s late, and the samples it sent meanwhile
# never reached us). On loopback an answer takes well under a millisecond, so a wave every 50 ms finds
# a returning stream within ~50 ms; each attempt listens MaxRTT s for answers, kept short so that a
# long outage holds a handful of sockets, not hundreds. On a network, put these keys (with RTTs that
# fit it) in your own lsl_api.cfg: docs/notes/issue11r.md.
FAST_RESOLVE_TUNING = {
    "ContinuousResolveInterval": 0.01,
    "MulticastMinRTT": 0.05,  # 0.005 broke one-shot resolves (pylsl.resolve_byprop never saw another process's
    "UnicastMinRTT": 0.05,  # stream), 0.02 failed for 2 of 4 processes resolving at once; 0.05 never did
    "MulticastMaxRTT": 0.2,
    "UnicastMaxRTT": 0.2,
}


def new_session_id() -> str:
    """A fresh liblsl session id: processes in other sessions never see this one's streams."""
    return f"bci-stream-{uuid.uuid4().hex[:8]}"


def use_loopback(directory: str | Path | None = None, session: str | None = None) -> Path:
    """Write an ``lsl_api.cfg`` that resolves streams on this machine only, in liblsl session
    ``session`` (default: a new one, so two runs never see each other's streams), with resolve waves
    fast enough to find a returning stream within ~50 ms (``FAST_RESOLVE_TUNING``), and point liblsl
    at it; liblsl's log keeps to warnings and errors.

    Must run before the first LSL call of the process (liblsl reads its config once). Sets
    ``LSLAPICFG`` so that child processes and mne-lsl's bundled liblsl read the same file, and
    tells pylsl directly. Returns the config path.
    """
    if directory is None:  # ours: removed when this process exits (children it started have ended by then)
        directory = Path(tempfile.mkdtemp(prefix="bci-stream-lsl-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = Path(directory) / "lsl_api.cfg"
    tuning = "\n".join(f"{key} = {value:g}" for key, value in FAST_RESOLVE_TUNING.items())
    path.write_text(LOOPBACK_CONFIG.format(session=session or new_session_id(), tuning=tuning))
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
