"""A minimal XDF 1.0 writer for tests (pyxdf only reads): one numeric and one string stream, as
LabRecorder lays them out (file header, stream headers, sample chunks, clock offsets, footers)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def _chunk(tag: int, content: bytes) -> bytes:
    body = struct.pack("<H", tag) + content
    return struct.pack("<B", 8) + struct.pack("<Q", len(body)) + body


def _varlen(n: int) -> bytes:
    return struct.pack("<B", 8) + struct.pack("<Q", n)


def _header_xml(name, stype, labels, srate, fmt, source_id, unit="microvolts", ch_types=None) -> bytes:
    ch_types = ch_types or [stype] * len(labels)
    channels = "".join(f"<channel><label>{c}</label><unit>{unit}</unit><type>{t}</type></channel>"
                       for c, t in zip(labels, ch_types))
    return (f'<?xml version="1.0"?><info><name>{name}</name><type>{stype}</type>'
            f"<channel_count>{len(labels)}</channel_count><nominal_srate>{srate}</nominal_srate>"
            f"<channel_format>{fmt}</channel_format><source_id>{source_id}</source_id>"
            f"<created_at>0</created_at><desc><channels>{channels}</channels></desc></info>").encode()


def write_xdf(path: str | Path, data: np.ndarray, sfreq: float, ch_names: list[str],
              markers: list[tuple[int, str]], t0: float = 100.0, unit: str = "microvolts",
              stream_type: str = "EEG", ch_types: list[str] | None = None, marker_type: str = "Markers") -> Path:
    """``data`` ``(n_ch, n_times)`` float32 at ``sfreq`` from LSL time ``t0``; ``markers`` at sample indices;
    ``stream_type``/``ch_types``/``marker_type`` as the header declares them."""
    path = Path(path)
    n_ch, n = data.shape
    out = bytearray(b"XDF:")
    out += _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')
    out += _chunk(2, struct.pack("<I", 1) + _header_xml("EEG", stream_type, ch_names, sfreq, "float32", "amp", unit,
                                                        ch_types))
    out += _chunk(2, struct.pack("<I", 2) + _header_xml("Markers", marker_type, ["m"], 0, "string", "stim"))
    times = t0 + np.arange(n) / sfreq
    for start in range(0, n, 500):
        stop = min(n, start + 500)
        body = bytearray(struct.pack("<I", 1) + _varlen(stop - start))
        for i in range(start, stop):
            body += struct.pack("<B", 8) + struct.pack("<d", times[i]) + data[:, i].astype("<f4").tobytes()
        out += _chunk(3, bytes(body))
    body = bytearray(struct.pack("<I", 2) + _varlen(len(markers)))
    for sample, text in markers:
        raw = text.encode()
        body += struct.pack("<B", 8) + struct.pack("<d", times[sample]) + _varlen(len(raw)) + raw
    out += _chunk(3, bytes(body))
    for sid in (1, 2):
        out += _chunk(4, struct.pack("<I", sid) + struct.pack("<dd", t0, 0.0))
        out += _chunk(4, struct.pack("<I", sid) + struct.pack("<dd", t0 + n / sfreq, 0.0))
    out += _chunk(6, struct.pack("<I", 1) + f'<?xml version="1.0"?><info><first_timestamp>{times[0]}</first_timestamp>'
                  f"<last_timestamp>{times[-1]}</last_timestamp><sample_count>{n}</sample_count></info>".encode())
    path.write_bytes(bytes(out))
    return path
