"""The ``key=value`` options of a data SPEC, checked against the loader they go to: an unknown key (a
typo) names the known ones and the closest; a value that is not a number names its key.

The known keys are read from each loader's signature (and, for recordings, from the signatures of the
readers in :mod:`bci_stream.io`, which take the options the loader passes on), so a key added to a
loader or a reader is known without a table to keep in step.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache

# Arguments the trainer passes itself; a SPEC never sets them.
_INTERNAL = {"path", "root", "progress", "preprocess", "preprocessing"}


def signature_keys(function: Callable) -> set[str]:
    """The keyword options ``function`` takes (its named parameters less the path and the trainer's own)."""
    params = inspect.signature(function).parameters.values()
    return {p.name for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in _INTERNAL}


def takes_any_keyword(function: Callable) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(function).parameters.values())


@cache
def reader_keys() -> frozenset[str]:
    """Keyword options of every ``read_*`` function in the :mod:`bci_stream.io` modules (imported only
    when a recording's SPEC holds a key its loader does not name itself)."""
    import bci_stream.io as io

    keys: set[str] = set()
    for module in pkgutil.iter_modules(io.__path__):
        try:
            mod = importlib.import_module(f"bci_stream.io.{module.name}")
        except ImportError:  # a reader whose optional library is missing takes no options here
            continue
        for name, function in inspect.getmembers(mod, inspect.isfunction):
            if name.startswith("read_") and function.__module__ == mod.__name__ and name != "read_recording":
                keys |= signature_keys(function)
    return frozenset(keys)


def unknown_key_message(key: str, known: Iterable[str], where: str = "", noun: str = "key") -> str:
    """``<where>: unknown <noun> 'subjet' (did you mean 'subject'?); known: ...``."""
    known = sorted(set(known))
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{where + ': ' if where else ''}unknown {noun} {key!r}{hint}; known: {', '.join(known)}"


def check_keys(spec: str, loader: Callable, options: dict[str, str],
               more: Callable[[], Iterable[str]] | None = None) -> None:
    """Raise ``ValueError`` for a key of ``options`` that ``loader`` does not take; ``more``: further keys
    (the readers' options a loader passes on through ``**kwargs``), asked for only when needed."""
    own = signature_keys(loader)
    unknown = [k for k in options if k not in own]
    if not unknown:
        return
    if more is None and takes_any_keyword(loader):
        return  # the loader checks its free-form options itself
    extra = set(more()) if more is not None else set()
    for key in unknown:
        if key not in extra:
            raise ValueError(unknown_key_message(key, own | extra, where=f"data spec {spec!r}"))


_NOT_A_NUMBER = re.compile(r"(?:could not convert string to float|invalid literal for int\(\) with base \d+): "
                           r"'(.*)'$")
_UNEXPECTED = re.compile(r"(\w+)\(\) got an unexpected keyword argument '(\w+)'")


@contextmanager
def naming_keys(spec: str, options: dict[str, str]) -> Iterator[None]:
    """Around a loader call: a value the loader could not read as a number (``int('x')``) names its key;
    a key a reader did not take (a recording of another format) names the key and the reader."""
    try:
        yield
    except ValueError as err:
        found = _NOT_A_NUMBER.search(str(err))
        keys = [k for k, v in options.items() if found and v.strip() == found.group(1)]
        if not keys:
            raise
        word = "an integer" if "int()" in str(err) else "a number"
        raise ValueError(f"data spec {spec!r}: {keys[0]}={options[keys[0]]!r} is not {word}") from None
    except TypeError as err:
        found = _UNEXPECTED.search(str(err))
        if not found or found.group(2) not in options:
            raise
        function, key = found.groups()
        raise ValueError(f"data spec {spec!r}: key {key!r} does not apply to this file ({function} does not take it)"
                         "; drop it, or give a file of the format it is for") from None
