"""Range checks of a model card's numbers, and of the card against its network.

A card whose numbers are out of range fails late and obscurely: ``norm_std`` 0 or ``signal_scale``
NaN gives NaN on every decision, a 1e6-s window ends in ``MemoryError``, ``sfreq`` 0 in a division,
a card that does not fit the network's input in a raw ONNX Runtime error. These functions list
every problem as a one-line sentence; :class:`~bci_stream.contract.model_card.ModelCard` raises
``ModelCardError("; ".join(problems))`` when the list is not empty.

    problems = validate_card_numbers(card)           # the card alone (load time, `bci-stream info`)
    problems += check_card_fits_network(card, session)  # once the ONNX session is open
"""

from __future__ import annotations

import math

import numpy as np

from bci_stream.contract.units import UNIT_OPTIONS, normalise_unit

MAX_WINDOW_SECONDS = 60.0  # far beyond any visual ERP epoch; larger is a unit mistake (ms for s)
MAX_WINDOW_BYTES = 512 * 2**20  # one float32 window of the model's channels


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_card_numbers(card) -> list[str]:
    """Problems with the numbers of ``card`` (a ModelCard or anything with its attributes); [] if none."""
    problems = _scalar_problems(card) + _feature_problems(card)
    if problems:  # the sizes below need sane numbers
        return problems
    return _size_problems(card) + _table_problems(card)


class _Problems(list):
    """A list of problem texts with ``need(ok, text)``: keep ``text`` unless ``ok``."""

    def need(self, ok: bool, text: str) -> None:
        if not ok:
            self.append(text)


def _scalar_problems(card) -> list[str]:
    """Rate, channels, outputs, window, hop, scale and unit."""
    p = _Problems()
    p.need(_finite(card.sfreq) and card.sfreq > 0, f"sfreq must be a finite number > 0 Hz; got {card.sfreq!r}")
    p.need(len(card.ch_names) >= 1, "the card lists no channels")
    kind_out = getattr(card, "output_kind", "classes")
    p.need(kind_out in ("classes", "embedding"), f"output_kind must be 'classes' or 'embedding'; got {kind_out!r}")
    if kind_out == "embedding":
        p.extend(_embedding_problems(getattr(card, "embedding", {})))
    else:
        p.need(len(card.class_names) >= 1, "the card lists no classes")
    p.need(_finite(card.window_length) and 0 < card.window_length <= MAX_WINDOW_SECONDS,
           f"window_length must be in (0, {MAX_WINDOW_SECONDS:g}] s; got {card.window_length!r}")
    p.need(_finite(card.window_offset), f"window_offset must be a finite number of seconds; got {card.window_offset!r}")
    p.need(_finite(card.hop) and card.hop > 0, f"hop must be a finite number > 0 s; got {card.hop!r}")
    p.need(_finite(card.signal_scale) and card.signal_scale != 0,
           f"signal_scale must be a finite non-zero number; got {card.signal_scale!r}")
    p.need(normalise_unit(card.signal_unit) is not None,
           f"signal_unit {card.signal_unit!r} is not one of {UNIT_OPTIONS}")
    return p


def _feature_problems(card) -> list[str]:
    """The feature kind and its spectrogram or erp numbers."""
    p, spec = _Problems(), card.spectrogram
    p.need(isinstance(spec.nperseg, int) and spec.nperseg >= 2, f"spectrogram nperseg must be an integer >= 2; "
           f"got {spec.nperseg!r}")
    if spec.noverlap is not None and isinstance(spec.nperseg, int):
        p.need(isinstance(spec.noverlap, int) and 0 <= spec.noverlap < spec.nperseg,
               f"spectrogram noverlap must be in 0..nperseg-1; got {spec.noverlap!r}")
    p.need(_finite(spec.log_eps) and spec.log_eps > 0, f"spectrogram log_eps must be > 0; got {spec.log_eps!r}")
    kind = getattr(card, "feature_kind", "spectrogram")
    p.need(kind in ("spectrogram", "erp"), f"feature_kind must be 'spectrogram' or 'erp'; got {kind!r}")
    p.need(spec.fmax is None or (_finite(spec.fmax) and spec.fmax >= 0),
           f"spectrogram fmax must be null or a frequency >= 0 Hz; got {spec.fmax!r}")
    erp = getattr(card, "erp", None)
    if kind == "erp" and erp is not None:
        p.need(isinstance(erp.numtaps, int) and erp.numtaps >= 1, f"erp numtaps must be an integer >= 1; got {erp.numtaps!r}")
        p.need(isinstance(erp.decimate, int) and erp.decimate >= 1, f"erp decimate must be an integer >= 1; got {erp.decimate!r}")
        p.need(_finite(erp.cutoff) and 0 < erp.cutoff < card.sfreq / 2,
               f"erp cutoff must be in (0, {card.sfreq / 2:g}) Hz; got {erp.cutoff!r}")
    return p


def _size_problems(card) -> list[str]:
    """The window against the filter or STFT segment, and its memory."""
    p, window = _Problems(), int(round(card.window_length * card.sfreq))
    if getattr(card, "feature_kind", "spectrogram") == "erp":
        p.need(window >= card.erp.numtaps, f"window of {window} samples is shorter than the ERP filter ({card.erp.numtaps} taps)")
    else:
        nperseg = card.spectrogram.nperseg
        p.need(window >= nperseg, f"window of {window} samples is shorter than one STFT segment ({nperseg})")
    p.need(window * len(card.ch_names) * 4 <= MAX_WINDOW_BYTES,
           f"a window of {card.window_length:g} s x {len(card.ch_names)} channels at {card.sfreq:g} Hz needs "
           f"{window * len(card.ch_names) * 4 / 2**20:.0f} MiB; at most {MAX_WINDOW_BYTES // 2**20} MiB")
    return p


def _table_problems(card) -> list[str]:
    """Normalisation tables (finite, std > 0) and evaluation figures (finite or null)."""
    p = _Problems()
    for name in ("norm_mean", "norm_std"):
        values = getattr(card, name)
        if values is None:
            continue
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            p.append(f"{name} is not a numeric (channels x feature rows) table")
            continue
        bad = int((~np.isfinite(array)).sum())
        p.need(bad == 0, f"{name} has {bad} non-finite value(s) (NaN/Inf)")
        if name == "norm_std":
            small = int((np.abs(array[np.isfinite(array)]) <= 0).sum())
            p.need(small == 0, f"norm_std has {small} value(s) <= 0 (division by zero: every decision would be NaN)")
    for key, value in (card.evaluation or {}).items():
        if isinstance(value, float):
            p.need(math.isfinite(value), f"evaluation {key} is {value!r}; write null for a missing figure")
    return p


def _embedding_problems(spec) -> list[str]:
    """Problems with an embedding card's ``embedding`` entry; [] if none."""
    if not isinstance(spec, dict):
        return ["embedding must be an object with dim, space, normalisation"]
    problems = []
    known = {"dim", "space", "checkpoint_sha256", "normalisation", "logit_scale"}
    if set(spec) - known:
        problems.append(f"embedding has unknown fields {sorted(set(spec) - known)}")
    dim = spec.get("dim")
    if not (isinstance(dim, int) and not isinstance(dim, bool) and dim >= 1):
        problems.append(f"embedding dim must be an integer >= 1; got {dim!r}")
    if not (isinstance(spec.get("space"), str) and spec.get("space")):
        problems.append("embedding space must name the image embedding model (e.g. open_clip:ViT-B-32/openai)")
    if spec.get("normalisation", "l2") != "l2":
        problems.append(f"embedding normalisation must be 'l2'; got {spec.get('normalisation')!r}")
    scale = spec.get("logit_scale", 1.0)
    if not (_finite(scale) and scale > 0):
        problems.append(f"embedding logit_scale must be a finite number > 0; got {scale!r}")
    return problems


def check_card_fits_network(card, session) -> list[str]:
    """Problems between ``card`` and an ONNX Runtime ``session`` (input and output shapes); [] if none.

    Dimensions the network leaves symbolic (a dynamic batch) are not checked.
    """
    problems = []
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        return [f"the network has {len(inputs)} inputs; a bci-stream student has one"]
    want = (1, *card.feature_shape())
    got = list(inputs[0].shape)
    if len(got) != len(want) or any(isinstance(g, int) and g != w for g, w in zip(got, want)):
        problems.append(f"the network's input is {tuple(got)}; the card's features are {want} "
                        "(channels, rows, columns): card and network do not belong together")
    out = list(outputs[0].shape) if outputs else []
    if getattr(card, "output_kind", "classes") == "embedding":
        dim = card.embedding.get("dim")
        if len(out) != 2 or (isinstance(out[1], int) and out[1] != dim):
            problems.append(f"the network outputs {tuple(out)}; the card's embedding has dimension {dim}")
    elif len(out) != 2 or (isinstance(out[1], int) and out[1] != len(card.class_names)):
        problems.append(f"the network outputs {tuple(out)}; the card lists {len(card.class_names)} classes")
    return problems
