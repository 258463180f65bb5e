"""Which calls a pickle (or a ``torch.save`` file) asks for, read from its opcodes without running any.

``torch.load(weights_only=True)`` refuses a file that names a call outside its allow-list, but its error
names the call only for pickle protocol 2 (``GLOBAL``); for protocols 4 and 5 (``STACK_GLOBAL`` in
framed pickles) it says "Unsupported operand 149". :func:`pickle_globals` lists the ``module.name``
of every global either way, so a refusal can say what the file wanted to run.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path

_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def _pickles(path: Path) -> list[bytes]:
    """The pickle streams of a file: a torch zip's ``*/data.pkl``, else the file itself (legacy torch
    files are several pickles back to back)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return [z.read(name) for name in z.namelist() if name.endswith("data.pkl")]
    return [path.read_bytes()]


def _globals_in(data: bytes) -> list[str]:
    found: list[str] = []
    stream = io.BytesIO(data)
    while stream.tell() < len(data):  # successive pickles (legacy torch.save); stop at the first bad byte
        recent: list[object] = []  # values pushed lately: STACK_GLOBAL takes the top two (module, name)
        memo: dict[int, object] = {}
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in _STRINGS:
                    recent.append(arg)
                elif op.name in _GETS:
                    recent.append(memo.get(arg))
                elif op.name in _PUTS:
                    memo[arg] = recent[-1] if recent else None
                elif op.name == "MEMOIZE":
                    memo[len(memo)] = recent[-1] if recent else None
                elif op.name == "GLOBAL":
                    found.append(str(arg).replace(" ", "."))
                    recent.append(None)
                elif op.name == "STACK_GLOBAL":
                    module, name = (recent[-2:] if len(recent) >= 2 else [None, None])
                    found.append(f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else "?")
                    recent.append(None)
                elif op.name not in ("FRAME", "PROTO"):
                    recent.append(None)
        except Exception:  # noqa: BLE001 - corrupt or not a pickle: what was read so far is the answer
            break
    return found


def pickle_globals(path: str | Path) -> list[str]:
    """``module.name`` of every global the pickle(s) in ``path`` would look up, in order, without loading
    anything; [] for a file that is not a pickle or holds none."""
    try:
        streams = _pickles(Path(path))
    except (OSError, zipfile.BadZipFile):
        return []
    return [g for data in streams for g in _globals_in(data)]


def _torch_allowed() -> set[str]:
    """What ``torch.load(weights_only=True)`` accepts (torch's own list; private, hence the fallback)."""
    try:
        from torch import _weights_only_unpickler as wu

        allowed = set(wu._get_allowed_globals())
        from torch.serialization import get_safe_globals

        allowed |= {f"{g.__module__}.{g.__qualname__}" for g in get_safe_globals() if hasattr(g, "__qualname__")}
        return allowed
    except Exception:  # noqa: BLE001
        return set()


def disallowed_globals(path: str | Path) -> list[str]:
    """The globals of :func:`pickle_globals` that torch's safe loader would refuse (each once, in order)."""
    allowed = _torch_allowed()
    out: list[str] = []
    for g in pickle_globals(path):
        safe = g in allowed or (not allowed and g.split(".")[0] in ("torch", "collections"))
        if not safe and g not in out:
            out.append(g)
    return out
