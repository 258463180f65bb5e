"""XDF recordings (LabRecorder): one EEG stream plus a string marker stream, via pyxdf."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from bci_stream.contract.units import ARBITRARY, UNIT_OPTIONS, UnitError, conversion_factor, normalise_unit
from bci_stream.io.integrity import check_xdf_complete
from bci_stream.io.recording import Recording, RecordingError

log = logging.getLogger(__name__)

def _text(value) -> str:
    return value[0] if isinstance(value, list) and value else (value or "")


def _channel_labels(stream: dict) -> tuple[list[str], list[str], list[str]]:
    """Labels, units and types (upper case, "" when undeclared) of a stream's channels."""
    info = stream["info"]
    n = int(_text(info["channel_count"]))
    try:
        channels = info["desc"][0]["channels"][0]["channel"]
        labels = [_text(ch.get("label")) for ch in channels]
        units = [_text(ch.get("unit")) for ch in channels]
        types = [_text(ch.get("type")).upper() for ch in channels]
    except (KeyError, IndexError, TypeError, AttributeError):
        labels, units, types = [], [], []
    if len(labels) != n or not all(labels):
        labels, units, types = [f"E{i + 1:03d}" for i in range(n)], [""] * n, [""] * n
    return labels, units, types


def read_xdf(path: str | Path, eeg_stream: str | None = None, marker_stream: str | None = None,
             channels: str = "eeg", unit: str | None = None) -> Recording:
    """Read the EEG and marker streams of an XDF file.

    Parameters
    ----------
    path : the ``.xdf`` file.
    eeg_stream : stream name to use; default the first stream of type EEG. A file with no stream
        of type EEG is refused (naming its streams) unless ``eeg_stream`` names one.
    marker_stream : marker stream name; default the first string stream of type Markers (other
        string streams, e.g. control messages, are not stimuli).
    channels : "eeg" keeps the channels of type EEG (and those with no declared type); "all" keeps
        every channel, with a warning naming the non-EEG ones.
    unit : the unit of every channel, overriding the header (for a header without units, or a
        wrong one): V, mV, uV, nV or a.u.

    Returns
    -------
    :class:`Recording` in microvolts, each channel converted from its header unit by
    :func:`bci_stream.contract.units.conversion_factor` (the live inlet's table: V, mV, µV/μV/uV, nV,
    mne-lsl's exponent codes "0", "-6"...); a missing or unknown unit is refused, as live, unless
    ``unit=`` is given. All-"a.u." data stay as they are (unit "a.u."). Marker times become the
    index of the nearest EEG sample.
    """
    if channels not in ("eeg", "all"):
        raise RecordingError(f"channels={channels!r}; use 'eeg' or 'all'")
    streams = _load_streams(path)
    eeg = _eeg_stream(path, streams, eeg_stream)
    labels, units, data = _eeg_channels(path, eeg, channels)
    out_unit, scale = _microvolt_scale(path, _name(eeg), labels, units, unit)
    sfreq = float(_text(eeg["info"]["nominal_srate"]))
    if sfreq <= 0:
        sfreq = float(eeg["info"].get("effective_srate") or 0)
    events = _events(path, streams, marker_stream, np.asarray(eeg["time_stamps"]), sfreq)
    return Recording(data=(data * scale).astype(np.float32), sfreq=sfreq, ch_names=labels, events=events,
                     unit=out_unit, source=str(path))


def _name(stream: dict) -> str:
    return _text(stream["info"]["name"])


def _is_string(stream: dict) -> bool:
    return _text(stream["info"]["channel_format"]) == "string"


def _kind(stream: dict) -> str:
    return _text(stream["info"]["type"])


def _load_streams(path: str | Path) -> list[dict]:
    """Every stream of the file (pyxdf, dejittered); a cut, corrupt or empty file is one line."""
    import pyxdf

    check_xdf_complete(path)  # pyxdf skips a cut tail silently
    try:
        streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=True)
    except Exception as err:  # pyxdf raises many types on corrupt files
        raise RecordingError(f"{path}: not a readable XDF file ({type(err).__name__}: {err})") from err
    if not streams:
        raise RecordingError(f"{path}: not a readable XDF file (no streams in it)")
    return streams


def _eeg_stream(path: str | Path, streams: list[dict], eeg_stream: str | None) -> dict:
    """The numeric stream with samples named ``eeg_stream``, else the first of type EEG."""
    numeric = [s for s in streams if not _is_string(s) and len(s["time_stamps"])]
    if eeg_stream is not None:
        numeric = [s for s in numeric if _name(s) == eeg_stream]
    else:
        numeric = [s for s in numeric if _kind(s).upper() == "EEG"]
    if not numeric:
        found = ", ".join(f"{_name(s)!r} (type {_kind(s) or '?'}, {_text(s['info']['channel_format'])})" for s in streams)
        raise RecordingError(f"{path}: no EEG stream{f' named {eeg_stream!r}' if eeg_stream else ' (type EEG)'} "
                             f"with samples; streams: {found}; pass eeg_stream=NAME to use another")
    return numeric[0]


def _eeg_channels(path: str | Path, eeg: dict, channels: str) -> tuple[list[str], list[str], np.ndarray]:
    """``(labels, units, data (n_channels, n_times))`` of the channels kept: of type EEG or undeclared
    (``channels="eeg"``), or all of them with a warning naming the others (``"all"``)."""
    labels, units, types = _channel_labels(eeg)
    data = np.asarray(eeg["time_series"], dtype=np.float64).T
    other = [i for i, t in enumerate(types) if t not in ("EEG", "")]
    if other and channels == "all":
        warnings.warn(f"{path}: keeping non-EEG channels {[f'{labels[i]} ({types[i]})' for i in other]}", stacklevel=3)
    elif other:
        keep = [i for i in range(len(labels)) if i not in set(other)]
        if not keep:
            raise RecordingError(f"{path}: stream {_name(eeg)!r} has no channel of type EEG; pass channels=all")
        log.info("%s: dropped non-EEG channels %s", path, [labels[i] for i in other])
        labels, units, data = [labels[i] for i in keep], [units[i] for i in keep], data[keep]
    return labels, units, data


def _events(path: str | Path, streams: list[dict], marker_stream: str | None, times: np.ndarray,
            sfreq: float) -> list[tuple[int, str]]:
    """``[(sample, text)]`` of the marker stream named ``marker_stream``, else the first string stream of
    type Markers (other string streams are not stimuli), each at the EEG sample nearest it."""
    strings = [s for s in streams if _is_string(s)]
    if marker_stream is not None:
        strings = [s for s in strings if _name(s) == marker_stream]
    else:
        if strings and not any(_kind(s).lower() == "markers" for s in strings):
            warnings.warn(f"{path}: no marker stream of type Markers (string streams: {[_name(s) for s in strings]}); "
                          "pass marker_stream=NAME to use one", stacklevel=3)
        strings = [s for s in strings if _kind(s).lower() == "markers"]
    if not strings:
        return []
    markers = strings[0]
    # the EEG sample nearest each marker (half a sample either side)
    idx = np.searchsorted(times, np.asarray(markers["time_stamps"]) - 0.5 / sfreq)
    return [(int(i), str(value[0])) for i, value in zip(idx, markers["time_series"]) if i < len(times)]


def _microvolt_scale(path, stream: str, labels: list[str], units: list[str],
                     override: str | None) -> tuple[str, np.ndarray]:
    """``(unit of the Recording, per-channel factor (n, 1))`` converting each channel to µV."""
    if override is not None:
        if normalise_unit(override) is None:
            raise RecordingError(f"unit={override!r} is not one of {UNIT_OPTIONS}")
        units = [override] * len(labels)
    found = [normalise_unit(u) for u in units]
    if all(u == ARBITRARY for u in found):
        return ARBITRARY, np.ones((len(labels), 1))
    factors = []
    for label, text in zip(labels, units):
        try:
            factors.append(conversion_factor(text, "uV"))
        except UnitError as err:
            raise RecordingError(f"{path}: stream {stream!r} channel {label!r}: {err}; give the unit in the spec "
                                 f"(e.g. unit=uV; for replay FILE,unit=uV)") from None
    return "uV", np.array(factors)[:, None]
