"""Channel names and positions on a standard 10-5 cap (MNE's colin27 montages, shipped as package data
so that the live decoder and the phantom need no MNE: ``data/standard_1005.tsv``)."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import numpy as np

# 10-20 sites in the order small caps take them: visual cortex first.
_CLASSIC_1020 = ["O1", "Oz", "O2", "P3", "Pz", "P4", "P7", "P8", "C3", "Cz", "C4", "F3", "Fz", "F4",
                 "Fp1", "Fp2", "F7", "F8", "T7", "T8", "Fpz"]
_ALIASES = {"T3", "T4", "T5", "T6", "M1", "M2", "A1", "A2"}


@lru_cache(maxsize=1)
def _montage() -> tuple[dict[str, np.ndarray], list[str]]:
    """(10-5 positions in the montage's order, the 10-20/10-10 names in theirs)."""
    positions, ten_ten = {}, {}
    for line in (files("bci_stream") / "data" / "standard_1005.tsv").read_text().splitlines():
        if line.startswith("#") or line.startswith("name\t"):
            continue
        name, x, y, z, rank = line.split("\t")
        positions[name] = np.array([float(x), float(y), float(z)])
        if int(rank) >= 0:
            ten_ten[int(rank)] = name
    return positions, [ten_ten[k] for k in sorted(ten_ten)]


def _positions_1005() -> dict[str, np.ndarray]:
    return _montage()[0]


def standard_channel_names(n_channels: int) -> list[str]:
    """``n_channels`` real 10-20/10-10/10-5 names, in cap order (front to back, left to right).

    The classic 10-20 sites come first (occipital and parietal before the rest), then the rest of 10-10, then 10-5 sites from the back
    of the head forward, so small caps keep occipital coverage and 128 channels is a 10-5 layout.
    """
    positions, ten_ten_all = _montage()
    ten_ten = [n for n in ten_ten_all if n not in _ALIASES]
    ten_five = sorted((n for n in positions if n not in ten_ten and n not in _ALIASES), key=lambda n: positions[n][1])
    ordered = [n for n in dict.fromkeys(_CLASSIC_1020 + ten_ten + ten_five) if n in positions]
    if not 1 <= n_channels <= len(ordered):
        raise ValueError(f"a standard cap has 1..{len(ordered)} channels; asked for {n_channels}")
    chosen = set(ordered[:n_channels])
    return [n for n in positions if n in chosen]


def channel_positions(ch_names: list[str]) -> np.ndarray:
    """Head-frame positions (x right, y front, z up), metres, shape ``(n_channels, 3)``."""
    positions = _positions_1005()
    missing = [n for n in ch_names if n not in positions]
    if missing:
        raise ValueError(f"no standard 10-5 position for channels: {missing[:8]}")
    return np.stack([positions[n] for n in ch_names])
