"""liblsl configuration: keep discovery on this machine (tests, demos, benchmarks), in a session of its own."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from pathlib import Path

MARKER = "; bci-stream loopback config"

LOOPBACK_CONFIG = MARKER + """
[ports]
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
# never reached us). On loopback an answer takes well under a millisecond: the session's processes get
# a wave every ~110 ms, a decoding process (fast_resolve_in_this_process) one every ~20 ms; each attempt
# listens MaxRTT s for answers, kept short so that a long outage holds a handful of sockets, not hundreds. On a network, put these keys (with RTTs that
# fit it) in your own lsl_api.cfg: the README, "Faults".
LOOPBACK_TUNING = {  # every process of the session: one-shot resolves (lab tools, pylsl.resolve_byprop) must work
    "ContinuousResolveInterval": 0.01,
    "MulticastMinRTT": 0.05,  # 0.005 broke one-shot resolves (pylsl.resolve_byprop never saw another process's
    "UnicastMinRTT": 0.05,  # stream), 0.02 failed for 2 of 4 processes resolving at once; 0.05 never did
    "MulticastMaxRTT": 0.2,
    "UnicastMaxRTT": 0.2,
}
FAST_RESOLVE_TUNING = {  # the decoding process only (fast_resolve_in_this_process): it resolves continuously only
    "ContinuousResolveInterval": 0.01,
    "MulticastMinRTT": 0.005,
    "UnicastMinRTT": 0.005,
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
    path.write_text(LOOPBACK_CONFIG.format(session=session or new_session_id(), tuning=_tuning(LOOPBACK_TUNING)))
    os.environ["LSLAPICFG"] = str(path)
    try:
        import pylsl

        pylsl.set_config_filename(str(path))
    except Exception:  # liblsl already initialised: the env var still reaches child processes
        pass
    return path


def _tuning(keys: dict[str, float]) -> str:
    return "\n".join(f"{key} = {value:g}" for key, value in keys.items())


def fast_resolve_in_this_process() -> Path | None:
    """Give this process (a decoder: it finds streams with continuous resolvers only) the fast resolve
    waves of :data:`FAST_RESOLVE_TUNING`, a wave every ~20 ms, so a returning stream is found within
    ~20 ms; other processes of the session keep :data:`LOOPBACK_TUNING`, with which liblsl's one-shot
    resolve works (it does not with 5-ms round trips). Only over a loopback config of ours
    (``LSLAPICFG``): a lab's own ``lsl_api.cfg`` is left as it is. Must run before this process's
    first LSL call; ``LSLAPICFG`` is not changed (child processes get the session's config).
    Returns the config written, or None."""
    base = os.environ.get("LSLAPICFG")
    try:
        text = Path(base).read_text() if base else ""
    except OSError:
        return None
    if not text.startswith(MARKER):
        return None
    fast = Path(base).with_name("lsl_api_decoder.cfg")
    fast.write_text(text.replace(_tuning(LOOPBACK_TUNING), _tuning(FAST_RESOLVE_TUNING)))
    try:
        import pylsl

        pylsl.set_config_filename(str(fast))
    except Exception:  # liblsl already initialised in this process: it keeps the session's config
        return None
    return fast


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
