"""BrainFlow boards as LSL sources: one board's EEG rows as an LSL EEG stream, its marker channel as an LSL
marker stream, so every headset BrainFlow supports (OpenBCI Cyton / Ganglion, Muse, g.tec Unicorn,
BrainBit, … and BrainFlow's synthetic board) decodes live with ``bci-stream live``.

The EEG stream follows the XDF meta-data conventions: ``desc/channels/channel`` with ``label`` (the
board's electrode names, ``BoardShim.get_eeg_names``; ``EEG1``… where BrainFlow has none), ``unit``
("microvolts": BrainFlow scales EEG to µV) and ``type`` ("EEG"), ``desc/acquisition`` (manufacturer
"BrainFlow", model = the board's name). Samples keep BrainFlow's timestamps, moved onto the LSL clock.
Markers (``BoardShim.insert_marker`` or a board's trigger input: non-zero values of the marker channel)
are sent as strings (``"2"`` for 2.0) on ``<name>-markers``, stamped with their sample's time.

Needs ``pip install 'bci-stream[brainflow]'``.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pylsl

from bci_stream.lsl.stream_meta import add_channels

log = logging.getLogger(__name__)
# BrainFlow 5.x finds its library through pkg_resources on Python < 3.12 (see pyproject's [brainflow]):
# its deprecation notice is about BrainFlow, not something a user of the bridge can act on
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)


def board_names() -> list[str]:
    """BrainFlow's board names as ``--board`` takes them: ``BoardIds`` members, lower case, without
    ``_BOARD`` (``synthetic``, ``cyton``, ``cyton_daisy``, ``ganglion``, ``muse_2``, …)."""
    from brainflow.board_shim import BoardIds

    return [b.name.removesuffix("_BOARD").lower() for b in BoardIds if b.value >= -1]


def board_id(name: str) -> int:
    """The ``BoardIds`` value of a board name (:func:`board_names`) or of a number."""
    from brainflow.board_shim import BoardIds

    text = name.strip().lower()
    try:
        return int(text)
    except ValueError:
        pass
    key = text.upper() if text.upper() in BoardIds.__members__ else f"{text.upper()}_BOARD"
    if key not in BoardIds.__members__:
        raise ValueError(f"unknown BrainFlow board {name!r}; choose from {', '.join(board_names())} (or its number)")
    return int(BoardIds[key].value)


@dataclass(frozen=True)
class BrainFlowConfig:
    """A board and how to reach it (BrainFlow's ``BrainFlowInputParams``), and the LSL streams made of it.

    Attributes
    ----------
    board : board name (:func:`board_names`) or BrainFlow board id.
    serial_port, mac_address, ip_address, ip_port, serial_number, other_info : BrainFlow connection
        parameters (what each board needs is in BrainFlow's board documentation; the synthetic board none).
    name : LSL stream name (None: ``brainflow-<board>``); markers go to ``<name>-markers``.
    source_id : LSL source id (None: the name).
    poll : seconds between reads of the board's buffer.
    """

    board: str = "synthetic"
    serial_port: str = ""
    mac_address: str = ""
    ip_address: str = ""
    ip_port: int = 0
    serial_number: str = ""
    other_info: str = ""
    name: str | None = None
    source_id: str | None = None
    poll: float = 0.02

    @property
    def stream_name(self) -> str:
        return self.name or f"brainflow-{self.board}"


def eeg_labels(board: int) -> list[str]:
    """The board's EEG electrode names (``EEG1``… when BrainFlow lists none)."""
    from brainflow.board_shim import BoardShim

    n = len(BoardShim.get_eeg_channels(board))
    try:
        names = list(BoardShim.get_eeg_names(board))
    except Exception:  # noqa: BLE001 - BrainFlowError: this board has no electrode names
        names = []
    return names if len(names) == n else [f"EEG{i + 1}" for i in range(n)]


class BrainFlowBridge:
    """Publishes one BrainFlow board over LSL: :meth:`start`, then :meth:`run` (or :meth:`pump` in a
    loop), :meth:`close`.

    Attributes
    ----------
    sent : EEG samples pushed so far.
    markers_sent : markers pushed so far.
    labels : the EEG stream's channel labels.
    sfreq : the board's EEG rate, Hz.
    """

    def __init__(self, config: BrainFlowConfig = BrainFlowConfig()):
        from brainflow.board_shim import BoardShim, BrainFlowInputParams

        self.config = config
        self.board_id = board_id(config.board)
        params = BrainFlowInputParams()
        for key in ("serial_port", "mac_address", "ip_address", "ip_port", "serial_number", "other_info"):
            setattr(params, key, getattr(config, key))
        self.board = BoardShim(self.board_id, params)
        self.sfreq = float(BoardShim.get_sampling_rate(self.board_id))
        self._eeg_rows = list(BoardShim.get_eeg_channels(self.board_id))
        self._marker_row = BoardShim.get_marker_channel(self.board_id)
        self._time_row = BoardShim.get_timestamp_channel(self.board_id)
        self.labels = eeg_labels(self.board_id)
        self.description = BoardShim.get_board_descr(self.board_id).get("name", config.board)
        self.sent = 0
        self.markers_sent = 0
        self.stop_event = threading.Event()
        self.eeg_outlet: pylsl.StreamOutlet | None = None
        self.marker_outlet: pylsl.StreamOutlet | None = None
        self._offset = 0.0

    def stream_info(self) -> pylsl.StreamInfo:
        """The EEG stream's description (XDF conventions: channels with labels, units and types; acquisition)."""
        name, cfg = self.config.stream_name, self.config
        info = pylsl.StreamInfo(name, "EEG", len(self.labels), self.sfreq, pylsl.cf_float32, cfg.source_id or name)
        add_channels(info.desc(), self.labels, ["microvolts"] * len(self.labels), ["EEG"] * len(self.labels))
        acq = info.desc().append_child("acquisition")
        acq.append_child_value("manufacturer", "BrainFlow")
        acq.append_child_value("model", str(self.description))
        acq.append_child_value("board_id", str(self.board_id))
        return info

    def start(self) -> None:
        """Open the board (``prepare_session``), start it streaming and create both outlets."""
        name = self.config.stream_name
        self.board.prepare_session()
        self.eeg_outlet = pylsl.StreamOutlet(self.stream_info())
        markers = pylsl.StreamInfo(f"{name}-markers", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                                   f"{self.config.source_id or name}-markers")
        self.marker_outlet = pylsl.StreamOutlet(markers)
        self.board.start_stream()
        # BrainFlow stamps samples in Unix time; LSL in its own clock: one offset, taken once
        self._offset = pylsl.local_clock() - time.time()
        log.info("BrainFlow %s: %d EEG ch @ %g Hz as LSL %r (+ markers)", self.description, len(self.labels), self.sfreq, name)

    def mark(self, value: float) -> None:
        """Insert a marker into the board's marker channel (sent on the marker stream with its sample)."""
        self.board.insert_marker(float(value))

    def pump(self) -> int:
        """Move what the board buffered onto the outlets; returns the EEG samples pushed."""
        data = self.board.get_board_data()
        n = data.shape[1]
        if n == 0:
            return 0
        stamps = data[self._time_row] + self._offset
        eeg = np.ascontiguousarray(data[self._eeg_rows].T, np.float32)
        self.eeg_outlet.push_chunk(eeg, stamps.tolist())
        for i in np.flatnonzero(data[self._marker_row]):
            value = float(data[self._marker_row, i])
            self.marker_outlet.push_sample([f"{value:g}"], float(stamps[i]))
            self.markers_sent += 1
        self.sent += n
        return n

    def run(self, seconds: float | None = None) -> None:
        """Pump every ``poll`` s until ``seconds`` have passed or :attr:`stop_event` is set."""
        end = None if seconds is None else time.monotonic() + seconds
        while not self.stop_event.is_set() and (end is None or time.monotonic() < end):
            self.pump()
            self.stop_event.wait(self.config.poll)
        self.pump()

    def close(self) -> None:
        """Stop the board and release it (never raises)."""
        try:
            if self.board.is_prepared():
                self.board.stop_stream()
                self.board.release_session()
        except Exception as err:  # noqa: BLE001 - closing must not mask the reason we stop
            log.warning("BrainFlow board did not close cleanly: %s", err)
