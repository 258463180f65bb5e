"""Which files a data spec names: literal paths first, globs only when asked for.

Published data sets name their files with characters that globbing or a ``key=value,...`` spec read
as syntax: SSVEP Exo's ``record-[2012.07.06-19.02.16]_raw.fif`` (``[...]`` is a glob class), lab
folders such as ``run=1`` or ``a,b``. The rules, shared by ``bci-train --data`` and ``bci-stream replay``:

1. **Splitting a spec** ``PATH[,key=value,...]``: the longest prefix of the text, cut at a ``,``,
   that exists on disk (a file or a folder) is the path, taken whole (it may contain ``,`` ``=`` ``;``
   ``[`` ``*``); the rest is ``key=value`` options. When no prefix exists, the first item without
   ``=`` is the path (a glob or a ``;``-separated list).
2. **Expanding a path**: each ``;``-separated part that exists is itself (never globbed); a part that
   does not exist and holds ``* ? [`` is a glob; a folder is every recording under it (recursively,
   the sidecars of rule 3 left out), or those matching ``glob=PATTERN`` (relative to the folder,
   which is taken literally even if its name holds ``[``).
3. Event sidecars (``…-eve.fif``, ``…_eve.fif``) are not recordings.
"""

from __future__ import annotations

import glob as globlib
from pathlib import Path

from bci_stream.io.recording import RecordingError

GLOB_CHARS = "*?["
RECORDING_SUFFIXES = (".xdf", ".xdfz", ".fif", ".edf", ".bdf", ".vhdr", ".set", ".gdf", ".cnt", ".csv", ".pth")


def split_path_options(rest: str) -> tuple[str | None, dict[str, str]]:
    """``"PATH,key=value,..."`` → ``(path or None, {key: value})`` by the rule in the module docstring."""
    cuts = [i for i, ch in enumerate(rest) if ch == ","] + [len(rest)]
    path, tail = None, rest
    for cut in reversed(cuts):  # the longest existing prefix wins
        candidate = rest[:cut].strip()
        if candidate and Path(candidate).exists():
            path, tail = candidate, rest[cut + 1 :]
            break
    options: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in tail.split(","))):
        key, eq, value = item.partition("=")
        if eq:
            options[key.strip()] = value.strip()
        elif path is None:
            path = item
        else:
            raise RecordingError(f"data spec {rest!r}: more than one path ({path!r}, {item!r}) and neither exists; "
                                 "separate files with ';' or give several specs")
    return path, options


def is_sidecar(path: str | Path) -> bool:
    """An MNE events file (``…-eve.fif`` / ``…_eve.fif``), which belongs to a recording."""
    name = Path(path).name.lower()
    return name.endswith(("-eve.fif", "_eve.fif", "-eve.fif.gz", "_eve.fif.gz"))


def _recordings_under(folder: Path, pattern: str | None, suffixes: tuple[str, ...]) -> list[str]:
    if pattern:
        found = [Path(p) for p in globlib.glob(str(Path(globlib.escape(str(folder))) / pattern), recursive=True)]
    else:
        found = [p for p in folder.rglob("*") if p.name.lower().endswith(suffixes)]
    return sorted(str(p) for p in found if p.is_file() and not is_sidecar(p))


def expand_paths(path: str, pattern: str | None = None,
                 suffixes: tuple[str, ...] = RECORDING_SUFFIXES) -> list[str]:
    """The recording files a spec's path names (module docstring, rule 2), in sorted order per part.

    ``pattern``: the ``glob=`` option (files under a folder path, or on its own a glob from the
    working directory). ``suffixes``: what a bare folder's recordings end with.
    """
    if not path:
        if not pattern:
            raise RecordingError("no path given; write KIND:PATH or KIND:FOLDER,glob=PATTERN")
        path = "."
    out: list[str] = []
    parts = [path] if Path(path).exists() else [s.strip() for s in path.split(";") if s.strip()]
    for part in parts:
        p = Path(part)
        if p.is_dir():
            found = _recordings_under(p, pattern, suffixes)
            if not found:
                looked = f"matches glob={pattern}" if pattern else "(looked for " + " ".join(suffixes) + ")"
                raise RecordingError(f"{part}: no recording in this folder {looked}")
            out += found
        elif p.exists():
            if pattern:
                raise RecordingError(f"glob={pattern} needs a folder; {part} is a file")
            out.append(part)
        elif any(ch in part for ch in GLOB_CHARS):
            found = sorted(f for f in globlib.glob(part, recursive=True) if Path(f).is_file() and not is_sidecar(f))
            if not found:
                raise RecordingError(f"no file matches {part!r} (and no file has that name)")
            out += found
        else:
            raise RecordingError(f"no recording at {part}")
    duplicates = sorted({p for p in out if out.count(p) > 1})
    if duplicates:
        raise RecordingError(f"{duplicates[0]} is named twice in {path!r}; name each recording once")
    return out
