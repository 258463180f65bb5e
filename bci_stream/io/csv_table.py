"""Timestamped CSV recordings with a marker column (Muse / eeg-notebooks layout first), via pandas.

The eeg-notebooks layout: ``timestamps,TP9,AF7,AF8,TP10,Right AUX,Marker0`` (some files name the
last column ``Marker``): one row per sample, ``timestamps`` in seconds (the LSL clock), EEG in µV,
the marker column 0 except at a stimulus-onset row, where it holds the stimulus code.

Which column is what, unless the spec says:

- time: the first column named ``timestamps``/``timestamp``/``time``/``times``/``t`` (any case);
- markers: the columns named ``Marker``/``Marker<N>``/``markers``/``events``/``stim`` (any case);
  their non-zero, non-empty values are markers (the code as text, e.g. ``"2"``);
- EEG: every other column except ``Right AUX`` (Muse's auxiliary input), or ``eeg=TP9;AF7`` given;
- unit: a ``(uV)``/``[mV]`` suffix on the EEG column names, else ``unit=`` given, else µV (the
  eeg-notebooks/muse-lsl convention).

The sampling rate is the slope of a least-squares fit of the timestamps on the row number (the
Muse files round timestamps to the millisecond, so a median difference of 4 ms reads 250 Hz for a
256-Hz stream), rounded to the nearest whole Hz when within 0.1 % of it (a nominal rate; clock
drift is smaller); ``sfreq=`` overrides it and is refused when the timestamps disagree by > 1 %.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from bci_stream.contract.units import UNIT_OPTIONS, UnitError, conversion_factor, normalise_unit
from bci_stream.io.events import name_events, parse_event_id
from bci_stream.io.recording import Recording, RecordingError

TIME_COLUMNS = ("timestamps", "timestamp", "time", "times", "t")
MARKER_COLUMN = re.compile(r"^(markers?\d*|events?|stim)$", re.IGNORECASE)
AUX_COLUMNS = ("Right AUX",)
_UNIT_SUFFIX = re.compile(r"^(.*?)\s*[(\[]\s*([^)\]]+)\s*[)\]]$")
NOMINAL_TOLERANCE = 1e-3  # a fitted rate this close to a whole number of Hz is that nominal rate
SFREQ_TOLERANCE = 0.01  # sfreq= vs the timestamps
GAP_SECONDS = 0.25  # a timestamp step longer than this is reported (samples lost?)


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [c.strip() for c in str(text).split(";") if c.strip()]


def read_csv(path: str | Path, eeg: str | None = None, drop: str | None = None, time_column: str | None = None,
             marker_column: str | None = None, unit: str | None = None, sfreq: str | float | None = None,
             event_id: str | None = None) -> Recording:
    """Read a timestamped CSV recording (see the module docstring for the defaults).

    Parameters
    ----------
    eeg, drop : ``;``-separated column names: the EEG channels, or columns to leave out
        (default ``Right AUX``).
    time_column, marker_column : the timestamp and marker columns (``marker_column=none``: no markers).
    unit : the EEG columns' unit (V, mV, uV, nV); converted to µV.
    sfreq : Hz, instead of the rate from the timestamps.
    event_id : ``"1:house;2:face"``: marker codes renamed.

    Returns
    -------
    :class:`Recording` ``(n_eeg, n_rows)`` in µV; a marker at each row whose marker value is set.
    """
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_csv(path, skipinitialspace=True)
    except Exception as err:  # empty, binary, ragged
        raise RecordingError(f"{path}: not a readable CSV file ({type(err).__name__}: {err})".splitlines()[0]) from None
    columns = [str(c) for c in table.columns]
    if len(table) < 2:
        raise RecordingError(f"{path}: {len(table)} data rows; a recording needs more")

    # 1. The time and marker columns
    time_col = time_column or next((c for c in columns if c.strip().lower() in TIME_COLUMNS), None)
    if time_col is not None and time_col not in columns:
        raise RecordingError(f"{path}: no column {time_col!r} for time_column= (columns: {columns})")
    marker_cols = _marker_columns(path, columns, marker_column)

    # 2. The EEG columns and their unit
    eeg_cols = _eeg_columns(path, columns, eeg, drop, [time_col, *marker_cols])
    ch_names, header_units = zip(*(_split_unit(c) for c in eeg_cols))
    scale = np.array([_factor(path, c, unit or u or "uV") for c, u in zip(eeg_cols, header_units)])[:, None]
    values = table[eeg_cols].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = np.isnan(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise RecordingError(f"{path}: {int(bad.sum())} empty or non-numeric EEG values (first: row {row + 2}, "
                             f"column {eeg_cols[col]!r}); fix the file or choose the columns with eeg=")

    # 3. The sampling rate
    rate = _rate(path, table[time_col].to_numpy(np.float64) if time_col else None, sfreq)

    # 4. Markers: every row with a set marker value
    events = _marker_events(table, marker_cols)
    return Recording(data=(values.T * scale).astype(np.float32), sfreq=rate, ch_names=list(ch_names),
                     events=name_events(events, parse_event_id(event_id)), unit="uV", source=str(path))


def _marker_columns(path: Path, columns: list[str], marker_column: str | None) -> list[str]:
    """The columns named by ``marker_column`` (``none``: no markers), else those named like Marker0."""
    if marker_column and marker_column.lower() == "none":
        return []
    if not marker_column:
        return [c for c in columns if MARKER_COLUMN.match(c.strip())]
    marker_cols = _names(marker_column)
    missing = [c for c in marker_cols if c not in columns]
    if missing:
        raise RecordingError(f"{path}: no column {missing[0]!r} for marker_column= (columns: {columns})")
    return marker_cols


def _eeg_columns(path: Path, columns: list[str], eeg: str | None, drop: str | None, taken: list) -> list[str]:
    """The columns named by ``eeg``, else every column neither ``taken`` (time, markers) nor dropped."""
    wanted = _names(eeg)
    dropped = set(_names(drop) if drop is not None else AUX_COLUMNS)
    if wanted:
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise RecordingError(f"{path}: no EEG column {missing[0]!r} (columns: {columns})")
        eeg_cols = wanted
    else:
        eeg_cols = [c for c in columns if c not in taken and c not in dropped]
    if not eeg_cols:
        raise RecordingError(f"{path}: no EEG column left (columns: {columns}); name them with eeg=A;B;C")
    return eeg_cols


def _marker_events(table, marker_cols: list[str]) -> list[tuple[int, str]]:
    """``[(row, code)]``: every row whose marker value is set (numeric: non-zero; text: non-empty, not "0")."""
    import pandas as pd

    events: list[tuple[int, str]] = []
    for col in marker_cols:
        marks = table[col]
        if pd.api.types.is_numeric_dtype(marks):
            rows = np.flatnonzero(marks.fillna(0).to_numpy() != 0)
        else:  # text markers: every non-empty cell other than "0"
            text = marks.fillna("").astype(str).str.strip()
            rows = np.flatnonzero(((text != "") & (text != "0")).to_numpy())
        events += [(int(row), _code(marks.iloc[row])) for row in rows]
    return events


def _split_unit(column: str) -> tuple[str, str | None]:
    """``"TP9 (uV)"`` → ``("TP9", "uV")``; a column without a unit suffix → ``(column, None)``."""
    found = _UNIT_SUFFIX.match(column.strip())
    if found and normalise_unit(found.group(2)) is not None:
        return found.group(1), found.group(2)
    return column.strip(), None


def _factor(path: Path, column: str, unit: str) -> float:
    try:
        return conversion_factor(unit, "uV")
    except UnitError as err:
        raise RecordingError(f"{path}: column {column!r}: {err}; give unit= ({UNIT_OPTIONS})") from None


def _code(value) -> str:
    """A marker cell as text: ``2.0`` → ``"2"``."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _rate(path: Path, times: np.ndarray | None, sfreq: str | float | None) -> float:
    """Hz from the timestamps (see the module docstring), checked against ``sfreq`` when given."""
    given = float(sfreq) if sfreq is not None else None
    if given is not None and given <= 0:
        raise RecordingError(f"sfreq={sfreq} must be > 0 Hz")
    if times is None:
        if given is None:
            raise RecordingError(f"{path}: no timestamp column; name it with time_column= or give sfreq=")
        return given
    if np.isnan(times).any():
        raise RecordingError(f"{path}: {int(np.isnan(times).sum())} rows have no timestamp")
    slope = np.polyfit(np.arange(len(times), dtype=np.float64), times - times[0], 1)[0]
    if slope <= 0:
        raise RecordingError(f"{path}: timestamps do not increase; give sfreq=")
    fitted = 1.0 / slope
    steps = np.diff(times)
    gap = int(np.argmax(np.abs(steps)))
    if abs(steps[gap]) > GAP_SECONDS:
        warnings.warn(f"{path}: the timestamps jump by {steps[gap]:+.3f} s at row {gap + 2} (samples lost or clock "
                      f"reset); the data are read as one uninterrupted {fitted:.2f}-Hz recording", stacklevel=3)
    if given is not None:
        if abs(given - fitted) > SFREQ_TOLERANCE * given:
            raise RecordingError(f"{path}: sfreq={given:g} but the timestamps say {fitted:.2f} Hz; check the file")
        return given
    nominal = round(fitted)
    return float(nominal) if nominal > 0 and abs(fitted - nominal) <= NOMINAL_TOLERANCE * nominal else fitted
