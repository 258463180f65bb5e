"""``bci-stream info``: what a model needs and how it was made (its card)."""

from __future__ import annotations

import json

from bci_stream.commands._common import HelpFormatter
from bci_stream.contract.units import stream_unit_requirement
from bci_stream.resources import model_path


def add_parser(sub, parents) -> None:
    p = sub.add_parser("info", help="print a model's card", parents=parents, formatter_class=HelpFormatter,
                       epilog="examples:\n  bci-stream info demo\n"
                              "  bci-stream info my_model.onnx --json > card.json\n",
                       description="Print what the model needs from a stream (rate, channels, unit, preprocessing) "
                                   "and how it was made (data, split, figures).")
    p.add_argument("model", type=model_path,
                   help="ONNX model with a bci-stream model card ('demo': the shipped demo model)")
    p.add_argument("--json", action="store_true", help="the whole card as JSON (machine-readable)")
    p.add_argument("--full", action="store_true", help="list every channel and class")
    p.set_defaults(func=run)


def summary(card, full: bool = False) -> dict:
    """The card for people: large tables left out (or listed in full), derived needs added."""
    hidden = ("norm_mean", "norm_std", "ch_names", "class_ids", "class_names", "preprocessing", "marker_classes",
              "artifacts")
    out = {k: v for k, v in json.loads(card.to_json()).items() if k not in hidden}
    shown = 8 if not full else card.n_channels
    more = lambda n, total: "" if n >= total else f" (+{total - n} more; --full lists them)"  # noqa: E731
    out["channels"] = f"{card.n_channels}: {', '.join(card.ch_names[:shown])}{more(shown, card.n_channels)}"
    shown = 6 if not full else card.n_classes
    out["classes"] = f"{card.n_classes}: {', '.join(card.class_names[:shown])}{more(shown, card.n_classes)}"
    if card.is_embedding:
        spec = card.embedding_spec()
        out["classes"] = "of the training data, " + out["classes"]
        out["output"] = (f"a {spec.dim}-d unit embedding in the space {spec.space}: decisions are the nearest images "
                         "of a gallery index in that space (bci-stream live --gallery-index; bci-stream index)")
    else:
        out["output"] = f"probabilities over {card.n_classes} classes"
    out["input shape"] = card.feature_shape()
    out["features"] = card.features().describe()
    out["stream must be"] = f"{card.input_sfreq:g} Hz, samples in {stream_unit_requirement(card.signal_unit)}"
    out["preprocessing"] = card.preprocessing_spec().describe()
    asr = card.asr_state()
    out["artifacts"] = asr.describe() + " after the preprocessing" if asr is not None else "none"
    if card.marker_classes:
        out["stimulus markers"] = f"{len(card.marker_classes)} named in the card (e.g. " + ", ".join(
            f"{m} -> {c}" for m, c in list(card.marker_classes.items())[:3]) + ")"
    return out


def run(args) -> int:
    from bci_stream.contract.model_card import ModelCard

    card = ModelCard.from_onnx(args.model)
    if args.json:
        print(json.dumps({**json.loads(card.to_json()), "input_sfreq": card.input_sfreq,
                          "feature_shape": card.feature_shape()}, indent=1))
    else:
        print(json.dumps(summary(card, args.full), indent=1, default=str))
    return 0
