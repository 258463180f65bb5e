"""argparse ``type=`` validators for numeric options: a bad value is refused by name at parse time.

``--hop -0.05`` or ``--sfreq 0`` must never reach the code that would clamp it, divide by it or hand
it to liblsl. Each validator returns the parsed value or raises ``argparse.ArgumentTypeError``,
which argparse prints as ``argument --hop: must be > 0 (seconds); got -0.05`` with exit code 2.

    p.add_argument("--hop", type=positive_float, ...)
    p.add_argument("--classes", type=int_range(1, 40), ...)
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}; got {text!r}") \
            from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds, Hz, a speed factor)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0; got {text}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: channels, smoothing, steps, pixels)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (seeds, indices)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {text}")
    return value


def int_range(low: int, high: int) -> Callable[[str], int]:
    """An integer in ``low..high`` (inclusive), e.g. ``int_range(1, 40)`` for the classes available."""
    def parse(text: str) -> int:
        value = _number(text, int)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in {low}..{high}; got {text}")
        return value

    parse.__name__ = f"int_range({low}, {high})"
    return parse


def float_range(low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    """A number in ``[low, high]`` (``(low, high]`` with ``low_open``), e.g. an img2img strength."""
    def parse(text: str) -> float:
        value = _number(text, float)
        if value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be in {'(' if low_open else '['}{low:g}, {high:g}]; got {text}")
        return value

    parse.__name__ = f"float_range({low:g}, {high:g})"
    return parse


def wait_seconds(text: str) -> float:
    """Seconds to wait, > 0, or -1 for "until it appears" (Ctrl-C still stops the wait)."""
    value = _number(text, float)
    if value != -1 and not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, or -1 to wait until the stream appears; got {text}")
    return value
