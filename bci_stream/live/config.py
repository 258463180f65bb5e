"""How a live session runs (a light module: the command line takes its defaults from here)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from bci_stream.contract.adaptation import AdaptConfig
from bci_stream.contract.artifacts import RepairConfig
from bci_stream.live.accumulate import AccumulateConfig
from bci_stream.live.channel_events import ChannelEventsConfig
from bci_stream.live.wait import WaitConfig


@dataclass(frozen=True)
class LiveConfig:
    """How the live session runs.

    Attributes
    ----------
    stream : EEG stream name (None: the first stream of type EEG that fits the model).
    markers : marker stream name (None: in event mode, the EEG stream's own marker stream, see
        :func:`bci_stream.lsl.markers.choose_marker_stream`; in continuous mode, that one if present).
    mode : "continuous" (a decision every hop) or "event" (one per stimulus marker, once its
        epoch is complete).
    hop : seconds between decisions in continuous mode (None: the model card's).
    smoothing : decisions averaged (continuous mode).
    log_path : JSONL session log (None: none).
    outlet_name : name of the predictions LSL outlet (its source id adds this host, the input
        stream's source id and the model's hash, so two decoders are never confused).
    lost_after : seconds without samples before the stream counts as lost.
    resolve_timeout : seconds to wait for the stream at start.
    buffer_seconds : ring buffer length.
    providers : ONNX Runtime providers: "auto", "cpu" or "cuda".
    assume_unit : the unit of the stream's samples when it declares none or a wrong one.
    stimuli : event mode: shell-style patterns (``fnmatch``) of the markers that are stimuli, e.g.
        ``("square*",)``; other markers (responses, block starts) are shown but not decoded.
        None: every marker is a stimulus.
    wait : how the loop waits for the next chunk (:class:`bci_stream.live.wait.WaitConfig`: block, poll,
        prewarm, spin).
    incremental : compute only the new spectrogram frames each hop (bit-identical to the full
        computation; False: every window in full, for comparisons).
    top_k : embedding models: gallery images per decision (:mod:`bci_stream.retrieval.retriever`).
    publish_embedding : embedding models: also publish the decoded embedding (``emb_*`` channels on
        the predictions outlet, ``embedding`` in the JSONL log).
    record_dir : record the EEG, marker and predictions streams into a new XDF file in this folder
        with LabRecorder (:mod:`bci_stream.recording.labrecorder`; None: no recording).
    watch_model : swap in the model at this path whenever the file changes (:mod:`bci_stream.live.hotswap`).
    accumulate : event mode: evidence accumulated over repeats (:mod:`bci_stream.live.accumulate`; off).
    events : event mode: events from a channel of the EEG stream (:mod:`bci_stream.live.channel_events`;
        None channel: from the LSL marker stream).
    bad_channels : flat / noisy / dropped-out channels: off (default), withhold the window, or repair
        them by spherical-spline interpolation (:class:`bci_stream.contract.artifacts.RepairConfig`).
    adapt : label-free session adaptation (:class:`bci_stream.contract.adaptation.AdaptConfig`; off): the
        features re-centred on the statistics of the session's first ``adapt.windows`` decisions, which
        themselves use the training statistics.
    """

    stream: str | None = None
    markers: str | None = None
    mode: str = "continuous"
    hop: float | None = None
    smoothing: int = 1
    log_path: Path | None = None
    outlet_name: str = "bci-stream-predictions"
    lost_after: float = 1.0
    resolve_timeout: float = 10.0
    buffer_seconds: float = 6.0
    providers: str = "auto"
    assume_unit: str | None = None
    stimuli: tuple[str, ...] | None = None
    wait: WaitConfig = WaitConfig()
    incremental: bool = True
    top_k: int = 5
    publish_embedding: bool = False
    record_dir: Path | None = None
    watch_model: Path | None = None
    accumulate: AccumulateConfig = AccumulateConfig()
    events: ChannelEventsConfig = ChannelEventsConfig()
    bad_channels: RepairConfig = RepairConfig()
    adapt: AdaptConfig = AdaptConfig()

    def is_stimulus(self, marker: str) -> bool:
        return self.stimuli is None or any(fnmatch.fnmatchcase(marker, p) for p in self.stimuli)

    def __post_init__(self) -> None:
        if self.mode not in ("continuous", "event"):
            raise ValueError(f"mode must be 'continuous' or 'event'; got {self.mode!r}")
        if self.accumulate.enabled and self.mode != "event":
            raise ValueError("--accumulate combines the decisions of repeated stimuli: it needs --mode event")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1; got {self.top_k}")
