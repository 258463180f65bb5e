"""Is a recording file whole? Cheap structural checks run before a reader parses it.

Readers are forgiving about files cut short: MNE reads a truncated EDF/BDF "inferring from the file
size" (a warning that ``verbose="error"`` hides) and pyxdf skips a broken XDF tail (a truncated
XDF replayed with 0 of its 3 markers). A recording cut short by a full disk or a crashed copy must
fail loudly instead: these raise :class:`RecordingError` with one line naming what is missing.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

from bci_stream.io.recording import RecordingError

_XDF_STREAM_FOOTER = 6


def check_edf_complete(path: str | Path) -> None:
    """Raise unless an EDF/EDF+/BDF file holds every data record its header announces.

    Header (EDF spec): total header bytes at 184, number of records at 236 (-1: unknown, then the
    data must be whole records), record duration at 244, signal count at 252; per-signal sample
    counts at ``256 + 216 * ns``. EDF stores 2 bytes per sample, BDF 3.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            fixed = f.read(256)
            if len(fixed) < 256:
                raise RecordingError(f"{path}: truncated: {len(fixed)} bytes, shorter than an EDF header (256)")
            header_bytes, n_records, duration, ns = (int(fixed[184:192]), int(fixed[236:244]),
                                                     float(fixed[244:252]), int(fixed[252:256]))
            f.seek(256 + 216 * ns)
            per_record = sum(int(f.read(8)) for _ in range(ns))
    except ValueError:
        return  # not a header we can parse: leave it to MNE, which names the problem
    width = 3 if fixed[:8] == b"\xffBIOSEMI" else 2
    record_bytes = per_record * width
    data_bytes = path.stat().st_size - header_bytes
    if record_bytes <= 0:
        return
    have = data_bytes // record_bytes
    if n_records < 0:  # recording not closed: records unknown, but a partial one means a cut
        if data_bytes % record_bytes:
            raise RecordingError(f"{path}: truncated inside data record {have + 1} (the header does not give "
                                 "the record count); the file was cut short: copy or export it again")
        return
    if data_bytes < n_records * record_bytes:
        raise RecordingError(
            f"{path}: truncated: {have} of {n_records} data records ({have * duration:g} of "
            f"{n_records * duration:g} s); the file was cut short: copy or export it again"
        )


def check_xdf_complete(path: str | Path) -> None:
    """Raise unless an XDF (or ``.xdfz``) file is a whole sequence of chunks with stream footers.

    Each chunk is ``[length-of-length byte 1|4|8][length][tag (2 bytes) + content]``; a file cut
    short ends inside a chunk. LabRecorder writes a StreamFooter (tag 6) per stream when it closes
    the file; a file without any was not closed (cut at a chunk boundary, a crashed recorder).
    """
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".xdfz") else open
    try:
        with opener(path, "rb") as f:
            if f.read(4) != b"XDF:":
                return  # not XDF at all: pyxdf names that
            offset, footers = 4, 0
            while True:
                lenlen = f.read(1)
                if not lenlen:
                    break
                size = {1: "<B", 4: "<I", 8: "<Q"}.get(lenlen[0])
                if size is None:
                    raise RecordingError(f"{path}: not a readable XDF file (invalid chunk header at byte {offset})")
                raw = f.read(struct.calcsize(size))
                if len(raw) < struct.calcsize(size):
                    raise RecordingError(f"{path}: truncated: the file ends inside the chunk header at byte "
                                         f"{offset}; the file was cut short: copy it again")
                length = struct.unpack(size, raw)[0]
                tag = f.read(2)
                body = len(tag) + _skip(f, length - 2)
                if body < length:
                    raise RecordingError(f"{path}: truncated: the chunk at byte {offset} needs {length} bytes, the "
                                         f"file ends after {body}; the file was cut short: copy it again")
                footers += len(tag) == 2 and struct.unpack("<H", tag)[0] == _XDF_STREAM_FOOTER
                offset += 1 + len(raw) + length
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise RecordingError(f"{path}: unreadable XDF file ({err})") from err
    if footers == 0:
        raise RecordingError(f"{path}: incomplete XDF: no stream footer, so the recording was not closed "
                             "(cut short, or the recorder crashed); copy it again or re-record")


def _skip(f, n: int) -> int:
    """Move ``n`` bytes on in ``f``; returns how many were there."""
    if n <= 0:
        return 0
    if isinstance(f, gzip.GzipFile):
        return len(f.read(n))
    here = f.tell()
    end = f.seek(0, 2)
    f.seek(min(here + n, end))
    return min(n, end - here)


_BV_WIDTH = {"INT_16": 2, "UINT_16": 2, "INT_32": 4, "IEEE_FLOAT_32": 4, "IEEE_FLOAT_64": 8}


def check_brainvision_complete(path: str | Path) -> None:
    """Raise unless a BrainVision recording's binary ``.eeg`` holds every sample it should.

    The ``.eeg`` holds ``NumberOfChannels`` x ``width`` bytes per sample; a file ending inside a
    sample, holding fewer samples than ``DataPoints`` (when the header gives it), or fewer than the
    last marker's position in the ``.vmrk`` was cut short. (A cut after the last marker at a sample
    boundary, in a header without ``DataPoints``, leaves no trace.)
    """
    path = Path(path)
    try:
        header = _ini(path.read_text(encoding="utf-8", errors="replace"))
        common = header.get("common infos", {})
        if common.get("dataformat", "BINARY").upper() != "BINARY":
            return
        n_ch = int(common["numberofchannels"])
        width = _BV_WIDTH.get(header.get("binary infos", {}).get("binaryformat", "").upper())
        data_file = path.with_name(common["datafile"])
    except (KeyError, ValueError, OSError):
        return  # not a header we can parse: leave it to MNE, which names the problem
    if width is None or not data_file.is_file():
        return
    size = data_file.stat().st_size
    frame = n_ch * width
    have = size // frame
    if size % frame:
        raise RecordingError(f"{data_file}: truncated inside sample {have + 1} ({size} bytes is not a whole number of "
                             f"{n_ch}-channel samples); the file was cut short: copy or export it again")
    expected = int(common.get("datapoints", 0) or 0)
    if expected and have < expected:
        raise RecordingError(f"{data_file}: truncated: the header says {expected} samples, the file holds {have}; "
                             "the file was cut short: copy or export it again")
    marker_file = path.with_name(common.get("markerfile", "")) if common.get("markerfile") else None
    if marker_file is not None and marker_file.is_file():
        markers = _ini(marker_file.read_text(encoding="utf-8", errors="replace")).get("marker infos", {})
        positions = []
        for value in markers.values():
            fields = value.split(",")
            if len(fields) > 2 and fields[2].strip().isdigit():
                positions.append(int(fields[2]))  # 1-based sample
        if positions and max(positions) > have:
            late = sum(p > have for p in positions)
            raise RecordingError(f"{data_file}: truncated: the file holds {have} samples but {late} of "
                                 f"{len(positions)} markers in {marker_file.name} come later (up to sample "
                                 f"{max(positions)}); the file was cut short: copy or export it again")


def _ini(text: str) -> dict[str, dict[str, str]]:
    """Sections of a BrainVision header/marker file (an INI dialect: a title line, ``;`` comments),
    section and key names lower case."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=False, allow_no_value=True,
                                       comment_prefixes=(";",), inline_comment_prefixes=None)
    parser.read_string("[title]\n" + text)
    return {name.lower(): {k: v or "" for k, v in parser[name].items()} for name in parser.sections()}
