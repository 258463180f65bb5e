"""LSL stream metadata as the XDF meta-data conventions lay it out (``desc/channels``, ``desc/reference``,
``desc/filtering``, ``desc/acquisition``): written by the bridges and outlets, read by the decoder.

What the decoder reads from an EEG stream (when present) and compares with the model card:

- ``desc/reference``: ``label`` (e.g. "Cz", "TP9,TP10"), ``subtracted`` ("Yes"/"No") and
  ``common_average`` ("true"/"false");
- ``desc/filtering``: ``highpass`` / ``lowpass`` (``lower``, ``upper``, ``order``, ``type``) and
  ``notch`` (``center``, ``bandwidth``), frequencies in Hz.

A contradiction (a stream low-passed below what the model reads, a reference channel already subtracted
out, …) is a warning, never a refusal: the stream's own description may be stale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pylsl


@dataclass(frozen=True)
class StreamFiltering:
    """What an EEG stream says was done to it before it was sent (NaN / None: not said).

    Attributes
    ----------
    highpass : the high-pass edge, Hz (the filter's ``lower``).
    lowpass : the low-pass edge, Hz (the filter's ``upper``).
    notch : notch centre frequencies, Hz.
    reference : the reference label ("" when not given).
    subtracted : whether the reference was subtracted (None: not said).
    common_average : the stream is common-average referenced.
    """

    highpass: float = math.nan
    lowpass: float = math.nan
    notch: tuple[float, ...] = ()
    reference: str = ""
    subtracted: bool | None = None
    common_average: bool = False

    @property
    def says_anything(self) -> bool:
        return bool(math.isfinite(self.highpass) or math.isfinite(self.lowpass) or self.notch or self.reference
                    or self.common_average)


def _number(node: pylsl.XMLElement, name: str) -> float:
    try:
        return float(node.child_value(name))
    except ValueError:
        return math.nan


def _truth(text: str) -> bool | None:
    low = text.strip().lower()
    return True if low in ("yes", "true", "1") else False if low in ("no", "false", "0") else None


def read_stream_filtering(info: pylsl.StreamInfo) -> StreamFiltering:
    """The ``desc/reference`` and ``desc/filtering`` of a full stream description (``inlet.info()``)."""
    desc = info.desc()
    ref, filt = desc.child("reference"), desc.child("filtering")
    notch, node = [], filt.child("notch")
    while not node.empty() and node.name() == "notch":
        f = _number(node, "center")
        if math.isfinite(f):
            notch.append(f)
        node = node.next_sibling("notch")
    return StreamFiltering(
        highpass=_number(filt.child("highpass"), "lower"), lowpass=_number(filt.child("lowpass"), "upper"),
        notch=tuple(notch), reference=ref.child_value("label").strip(), subtracted=_truth(ref.child_value("subtracted")),
        common_average=bool(_truth(ref.child_value("common_average"))))


def card_band(card) -> tuple[float, float]:
    """The frequency band ``(low, high)`` Hz a model reads: its card's band-pass / high-pass / low-pass
    edges, bounded above by the features' own limit (the spectrogram's ``fmax`` or the ERP low-pass)."""
    low, high = 0.0, card.input_sfreq / 2
    for f in card.preprocessing_spec().filters:
        if f.kind in ("bandpass", "highpass"):
            low = max(low, f.freqs[0])
        if f.kind in ("bandpass", "lowpass"):
            high = min(high, f.freqs[-1])
    if card.feature_kind == "erp":
        high = min(high, card.erp.cutoff)
    elif card.spectrogram.fmax is not None:
        high = min(high, card.spectrogram.fmax)
    return low, high


def contradictions(card, meta: StreamFiltering) -> list[str]:
    """Where a stream's described filtering or reference contradicts the model card (one line each)."""
    out = []
    low, high = card_band(card)
    if math.isfinite(meta.lowpass) and meta.lowpass < high:
        out.append(f"the stream is low-passed at {meta.lowpass:g} Hz (desc/filtering) but the model reads up to "
                   f"{high:g} Hz: its training data had content the stream lacks")
    if math.isfinite(meta.highpass) and meta.highpass > max(low, 0.0) + 1e-9 and meta.highpass >= 0.5:
        out.append(f"the stream is high-passed at {meta.highpass:g} Hz (desc/filtering) but the model reads from "
                   f"{low:g} Hz")
    for f in meta.notch:
        if low < f < high:
            out.append(f"the stream has a notch at {f:g} Hz (desc/filtering), inside the {low:g}-{high:g} Hz the model reads")
    ref = card.preprocessing_spec().reference
    if ref not in ("none", "average") and meta.subtracted and meta.reference:
        gone = {c.strip().lower() for c in meta.reference.split(",")} & {c.strip().lower() for c in ref.split(",")}
        if gone:
            out.append(f"the model re-references to {ref} but the stream says {', '.join(sorted(gone))} was already "
                       "subtracted (desc/reference): that channel is flat")
    return out


def add_channels(desc: pylsl.XMLElement, labels: list[str], units: list[str], types: list[str]) -> None:
    """``desc/channels/channel/{label, unit, type}``, one per channel."""
    channels = desc.append_child("channels")
    for label, unit, kind in zip(labels, units, types):
        ch = channels.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", unit)
        ch.append_child_value("type", kind)
