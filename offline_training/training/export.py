"""Export a trained student to ONNX with its ModelCard in ``metadata_props``, checked against torch."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bci_stream.contract.model_card import ModelCard
from bci_stream.contract.preprocessing import Preprocessing
from bci_stream.io.safe_write import atomic_path
from offline_training.training.fit import FitResult, feature_kind, load_model
from offline_training.training.objectives import WithL2Norm, WithSoftmax, objective_for  # noqa: F401 - exported here

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4


def card_for_run(fitted: FitResult, metrics: dict | None = None, hop: float = 0.02,
                 sweep: dict | None = None) -> ModelCard:
    """The ModelCard of a trained run: ``fitted`` (in memory, :func:`~offline_training.training.fit.fit`'s
    result, or :func:`load_run` of a run folder) and its test ``metrics``. ``sweep`` (the sweep folder, trial
    and selection metric that chose this run) goes to ``architecture["sweep"]``; a run trained on one
    subject's trials says so in ``training_data``."""
    config, info, metrics = fitted.config, fitted.info, metrics or {}
    own = fitted.objective.card_entries(fitted.model, info, metrics)
    evaluation = {k: metrics[k] for k in ("top1", "top3", "top5", "macro_f1", "kappa", "n", "k", "candidates",
                                          "oracle_top1", "oracle_ratio", "zero_shot") if k in metrics}
    sfreq = info["sfreq"]
    pre = Preprocessing.from_dict(info.get("preprocessing"))
    return ModelCard(
        sfreq=sfreq,
        ch_names=info["ch_names"],
        class_ids=info["class_ids"],
        class_names=info["class_names"],
        window_length=(config.crop_stop - config.crop_start) / sfreq,
        window_offset=info.get("tmin", 0.0) + config.crop_start / sfreq,
        hop=hop,
        spectrogram=config.spectrogram,
        feature_kind=feature_kind(config),
        erp=config.erp,
        norm_mean=fitted.normaliser.mean.tolist(),
        norm_std=fitted.normaliser.std.tolist(),
        signal_unit=info.get("signal_unit", "uV"),
        marker_classes=info.get("marker_classes", {}),
        preprocessing={} if pre.is_identity else pre.to_dict(sfreq * pre.decimate),  # SOS at the input rate
        artifacts=info.get("artifacts") or {},
        teacher=own["teacher"],
        training_data=info["data"] + (f" (subject {info['subject']} only)" if info.get("subject") is not None else ""),
        split=metrics.get("split", ""),
        evaluation={**evaluation, **own["evaluation"]},
        architecture={"student": config.student, **info["student_args"], "kd": config.kd,
                      "alpha": config.alpha, "temperature": config.temperature, **({"sweep": sweep} if sweep else {}),
                      **own["architecture"]},
        output_kind=own["output_kind"],
        embedding=own["embedding"],
    )


def load_run(run_dir: str | Path) -> tuple[FitResult, dict]:
    """A run folder read once: its model as a :class:`FitResult` and its ``metrics.json`` (``{}`` if absent)."""
    import json

    run_dir = Path(run_dir)
    model, normaliser, config, info = load_model(run_dir)
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    return FitResult(model, normaliser, config, info, objective_for(config)), metrics


def export_onnx(run: str | Path | FitResult, out: str | Path, hop: float = 0.02, sweep: dict | None = None,
                metrics: dict | None = None) -> tuple[Path, float]:
    """Write ``out`` (dynamic batch axis, opset of the dynamo exporter) with the run's card
    (``sweep``: see :func:`card_for_run`). ``run``: the trained model in memory (a :class:`FitResult`
    with its test ``metrics``) or a run folder, read once.

    Runs the parity check: ONNX Runtime vs torch on random inputs of batch 1 and 3; raises if the
    max abs difference exceeds :data:`PARITY_TOLERANCE`. Returns ``(path, max_abs_diff)``.
    """
    fitted, saved = (run, metrics or {}) if isinstance(run, FitResult) else load_run(run)
    if feature_kind(fitted.config) == "raw":
        raise ValueError("raw-EEG students (the old LSTM baseline) are not exported for the live app")
    card = card_for_run(fitted, saved, hop=hop, sweep=sweep)
    wrapped = fitted.objective.head(fitted.model).eval()
    what = f"{card.embedding_spec().dim}-d embedding" if card.is_embedding else f"{card.n_classes} classes"
    return write_onnx(wrapped, card, out, doc=f"bci-stream student ({fitted.config.student}), {what}")


def write_onnx(wrapped: nn.Module, card: ModelCard, out: str | Path, doc: str = "") -> tuple[Path, float]:
    """Export ``wrapped`` (features → probabilities or embedding) to ``out`` with ``card`` attached.

    The input is named after the card's feature kind, the output ``"probabilities"`` or ``"embedding"``
    (by ``card.output_kind``), the batch axis dynamic. Runs the parity check (ONNX Runtime vs torch on
    random inputs of batch 1 and 3) and raises if the max abs difference exceeds
    :data:`PARITY_TOLERANCE`. Returns ``(path, max_abs_diff)``.
    """
    import onnx
    import onnxruntime as ort

    wrapped = wrapped.eval()
    example = torch.randn(2, *card.feature_shape())
    out = Path(out)
    batch = torch.export.Dim("batch", min=1)
    output_name = "embedding" if card.is_embedding else "probabilities"
    with atomic_path(out) as tmp:  # out appears (or is replaced) only once the parity check has passed
        program = torch.onnx.export(wrapped, (example,), dynamo=True, input_names=[card.feature_kind],
                                    output_names=[output_name], dynamic_shapes={"x": {0: batch}},
                                    external_data=False, verbose=False)
        program.save(str(tmp))
        proto = onnx.load(str(tmp))
        card.attach_to(proto)
        proto.doc_string = doc or f"bci-stream model ({card.output_kind})"
        onnx.save(proto, str(tmp))

        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        worst = 0.0
        with torch.no_grad():
            for n in (1, 3):
                x = torch.randn(n, *card.feature_shape())
                ref = wrapped(x).numpy()
                got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
                worst = max(worst, float(np.abs(ref - got).max()))
        print(f"ONNX parity (ONNX Runtime vs torch, batch 1 and 3): max abs diff {worst:.2e}")
        if worst > PARITY_TOLERANCE:
            raise RuntimeError(f"exported model differs from torch by {worst:.2e} (> {PARITY_TOLERANCE})")
    return out, worst
