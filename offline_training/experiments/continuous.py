"""Continuous-mode accuracy: a model on the phantom *stream*, deciding every hop, as live.

The live app's default mode slides a window every hop with no marker; each decision is scored here
against the stimulus that caused it: the latest marker at or before the window's last sample, at
``lag`` = seconds from that marker to the window's end. Accuracy as a function of lag peaks where the
window covers the evoked response the model was trained on (``window_offset + window_length``) and
falls towards chance elsewhere. Offline through the same :class:`bci_stream.live.decoder.Decoder` and the
card's causal preprocessing, on a live session no model has seen (:data:`bci_stream.sources.phantom.LIVE_SESSION`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bci_stream.contract.preprocessing import preprocess_continuous
from bci_stream.live.decoder import Decoder
from bci_stream.sources.phantom import LIVE_SESSION, Phantom, PhantomConfig
from offline_training.experiments.evaluate import wilson_interval


@dataclass(frozen=True)
class ContinuousConfig:
    """A continuous-mode evaluation.

    Attributes
    ----------
    seconds : stream length per subject, s.
    subjects : phantom subjects streamed (1-based).
    isi : seconds between stimuli (interleaved classes, as a live session).
    session : the phantom recording session (default: a live one, unseen in training).
    lag_bin : width of the lag bins, s.
    """

    seconds: float = 60.0
    subjects: tuple[int, ...] = (1,)
    isi: float = 0.5
    session: int = LIVE_SESSION
    lag_bin: float = 0.02


def continuous_accuracy(model: str, phantom_config: PhantomConfig,
                        config: ContinuousConfig = ContinuousConfig()) -> dict:
    """Top-1 of the decision made every hop against the marker that caused it, by lag.

    Returns ``{"lag": [s, ...] (bin starts), "top1": [...], "ci": [[lo, hi], ...], "n": [...],
    "aligned_lag": s, "aligned_top1": top-1 in the bin holding it, "peak_lag", "peak_top1",
    "chance", "decisions"}``.
    """
    decoder = Decoder(model, providers="cpu")
    card = decoder.card
    phantom = Phantom(phantom_config)
    if card.input_sfreq != phantom_config.sfreq or card.ch_names != list(phantom.ch_names):
        raise ValueError("the model's card does not match this phantom's channels and rate")
    pre = card.preprocessing_spec()
    if pre.decimate != 1:
        raise ValueError("continuous-mode evaluation does not handle decimating preprocessing")
    n_bins = int(np.ceil(config.isi / config.lag_bin))
    hits, counts = np.zeros(n_bins), np.zeros(n_bins)
    width, hop = card.window_samples, card.hop_samples
    bin_samples = max(1, int(round(config.lag_bin * phantom_config.sfreq)))
    for subject in config.subjects:
        stream = phantom.new_stream(subject=subject, isi=config.isi, session=config.session)
        n = int(config.seconds * phantom_config.sfreq)
        data, markers = stream.read(n)
        if not pre.is_identity:  # the live chain, causal from the stream's first sample
            data = preprocess_continuous(pre, data, phantom.ch_names, phantom_config.sfreq)
        onsets = np.array([m[0] for m in markers])
        labels = np.array([m[2] for m in markers])
        for end in range(width, data.shape[1] + 1, hop):
            k = np.searchsorted(onsets, end - 1, side="right") - 1  # latest marker at or before the last sample
            if k < 0:
                continue
            b = int((end - onsets[k]) // bin_samples)  # in samples: no float rounding at bin edges
            if b >= n_bins:
                continue
            probs = decoder.classify(np.ascontiguousarray(data[:, end - width : end]))
            hits[b] += float(np.argmax(probs) == labels[k])
            counts[b] += 1
    top1 = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    aligned = card.window_offset + card.window_length
    aligned_bin = min(n_bins - 1, int(round(aligned * phantom_config.sfreq)) % int(round(config.isi * phantom_config.sfreq))
                      // bin_samples)
    peak = int(np.nanargmax(top1))
    return {"lag": (np.arange(n_bins) * config.lag_bin).round(6).tolist(), "top1": top1.tolist(),
            "ci": [list(wilson_interval(int(h), int(c))) for h, c in zip(hits, counts)], "n": counts.astype(int).tolist(),
            "aligned_lag": aligned, "aligned_top1": float(top1[aligned_bin]), "peak_lag": peak * config.lag_bin,
            "peak_top1": float(top1[peak]), "chance": 1.0 / card.n_classes, "decisions": int(counts.sum())}


def continuous_markdown(result: dict, every: int = 2) -> str:
    """A small table of top-1 by lag (every ``every``-th bin)."""
    lines = ["| lag (s) | top-1 [95 % CI] | decisions |", "|---|---|---|"]
    for i in range(0, len(result["lag"]), every):
        if not result["n"][i]:  # no decision falls in this bin (e.g. lag 0 with a hop-aligned schedule)
            continue
        lo, hi = result["ci"][i]
        lines.append(f"| {result['lag'][i]:.2f} | {result['top1'][i]:.3f} [{lo:.2f}, {hi:.2f}] | {result['n'][i]} |")
    lines.append(f"\nAligned lag (window offset + length) {result['aligned_lag']:.2f} s: top-1 "
                 f"{result['aligned_top1']:.3f}; peak {result['peak_top1']:.3f} at {result['peak_lag']:.2f} s; "
                 f"chance {result['chance']:.3f}; {result['decisions']} decisions.")
    return "\n".join(lines)
