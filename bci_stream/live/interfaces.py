"""The interfaces of the live path, declared: what the loop, the render worker and the viewer use of
their collaborators, every member of it (nothing is probed with ``getattr``/``hasattr``).

The real classes (:class:`~bci_stream.lsl.inlet.LSLSource`, :class:`~bci_stream.lsl.markers.MarkerSource`,
the outlets of :mod:`bci_stream.lsl.outlets`, :class:`~bci_stream.live.session_log.JsonlLog`, the
renderers of :mod:`bci_stream.render`, the viewer's traces) and the test doubles of
:mod:`bci_stream.testing` implement them in full; an optional capability is a member with a neutral
value (a source without a counter channel: ``has_counter`` False, ``lost_samples`` 0).

A decision flows one way (timeflux style): the decision stage makes a
:class:`~bci_stream.live.prediction.Prediction` of a window, each :class:`Stage` may change or hold it,
and every :class:`Sink` gets it in order (:func:`bci_stream.live.session.build_session` assembles them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import pylsl

    from bci_stream.contract.model_card import ModelCard
    from bci_stream.live.prediction import Prediction

#: samples ``(n, n_channels)`` float32 in the model's unit and their LSL stamps ``(n,)`` float64
Chunk = tuple[np.ndarray, np.ndarray]


@runtime_checkable
class Clock(Protocol):
    """The session's time, LSL seconds (``pylsl.local_clock``; tests script it)."""

    def __call__(self) -> float: ...


@runtime_checkable
class Source(Protocol):
    """What the loop reads EEG from.

    Attributes
    ----------
    info : the connected stream's full description (None before the first connection).
    lost_samples : samples the source's counter says went missing while connected (0 without one).
    gap_samples : samples the counter counted while the connection was down, all outages.
    last_gap_samples : those of the latest reconnection (None: unknown, or no counter).
    has_counter : whether lost samples are counted at all.
    is_open : the inlet is open (a silent stream may still be connected: keep reading it).
    unit_note : how samples are converted to the model's unit ("" when they are not).
    rejected : ``(stream name, why)`` of the streams not taken at the first connection.
    stop_event : set to abandon a wait for the stream.
    on_wait : called with the seconds waited so far during the first wait (None: silent).
    event_values : ``(n,)`` raw values of the ``--events-from`` channel in the last pull (empty without one).
    """

    info: pylsl.StreamInfo | None
    lost_samples: int
    gap_samples: int
    last_gap_samples: int | None
    unit_note: str
    rejected: list[tuple[str, str]]
    stop_event: threading.Event
    on_wait: Callable[[float], None] | None
    event_values: np.ndarray

    @property
    def has_counter(self) -> bool: ...

    @property
    def is_open(self) -> bool: ...

    def connect(self, timeout: float | None = None) -> bool:
        """Find and open the stream; False if it is not there within ``timeout`` s."""

    def pull(self, timeout: float) -> Chunk:
        """Wait up to ``timeout`` s, then what is ready; raises ``StreamLostError`` when it is gone."""

    def close(self) -> None: ...


@runtime_checkable
class MarkerInput(Protocol):
    """What the loop reads stimulus markers from.

    Attributes
    ----------
    info : the connected marker stream (None when not connected).
    name : its name (None until chosen).
    status : "none" | "connected" | "lost".
    reason : why this stream was chosen; ``others``: the names of the other candidates.
    changes : ``(status, t)`` of losses and returns since the loop last cleared the list.
    """

    info: pylsl.StreamInfo | None
    name: str | None
    status: str
    reason: str
    others: list[str]
    changes: list[tuple[str, float]]

    def connect(self, timeout: float = 5.0) -> bool: ...

    def pull(self) -> list[tuple[float, str]]:
        """Markers received since the last call, ``[(LSL time, text)]`` (never blocks)."""

    def close(self) -> None: ...


@runtime_checkable
class Stage(Protocol):
    """A step between the decision and the sinks: returns the decision to pass on (the same one,
    changed, or another), or None to pass nothing on for this window."""

    def process(self, prediction: Prediction) -> Prediction | None: ...

    def reset(self) -> None:
        """Forget what came before (the stream was lost, or the model swapped)."""


@runtime_checkable
class Sink(Protocol):
    """Where decisions go: called on the loop thread with each decision, in order (keep it quick:
    anything slow belongs on the sink's own thread, as the JSONL log and the render worker do)."""

    def push(self, prediction: Prediction) -> None: ...

    def close(self) -> None:
        """The session ended: flush and release (called once)."""


@runtime_checkable
class Outlet(Sink, Protocol):
    """A sink that publishes the decisions on the network under ``source_id`` (LabRecorder records it)."""

    source_id: str


@runtime_checkable
class Renderer(Protocol):
    """What the render worker draws with (:mod:`bci_stream.render`). ``draws_embeddings``: it takes an
    embedding model's decisions (:meth:`render_embedding`); otherwise a classifier's (:meth:`render`).
    Both return an ``(H, W, 3)`` uint8 picture."""

    kind: str
    draws_embeddings: bool

    def render(self, class_index: int, class_name: str) -> np.ndarray: ...

    def render_embedding(self, embedding: np.ndarray, row: int) -> np.ndarray: ...

    def close(self) -> None:
        """Release the pipeline (a renderer process ends its child)."""


class TraceFilter(Protocol):
    """A display-only filter of the traces (:class:`bci_stream.viewer.display.DisplayFilter`): Hz, None: off."""

    highpass: float | None
    notch: float | None

    def sos(self, sfreq: float) -> np.ndarray | None: ...

    def describe(self) -> str: ...


@runtime_checkable
class TracesSource(Protocol):
    """What the viewer draws EEG traces from: the ring buffer of an in-process session, or the
    decoding process's mirror (which is told what to send)."""

    def view(self, channels: np.ndarray, display: TraceFilter) -> tuple[np.ndarray, np.ndarray, float | None]:
        """``(data (n_shown, n_points) µV, times (n_points,) s before the newest sample, newest LSL stamp)``."""

    def select(self, channels: np.ndarray) -> None:
        """The channels shown from now on (indices)."""

    def set_filter(self, display: TraceFilter) -> None: ...

    def health(self, ch_names: list[str]) -> dict[str, list[str]] | None:
        """Channels flat / railed / noisy over the last second (None: the state carries it)."""


@runtime_checkable
class ViewerSession(Protocol):
    """What the viewer's buttons drive: a :class:`~bci_stream.live.session.LiveSession` in this
    process or the decoding process's handle (:class:`~bci_stream.viewer.decoding_process.DecodingProcess`)."""

    card: ModelCard

    def set_recording(self, path: str | Path | None) -> None: ...

    def swap_model(self, path: str | Path) -> None:
        """Hot-swap the model at ``path`` in; a model that does not fit leaves a message in the state."""

    def stop(self) -> None: ...
