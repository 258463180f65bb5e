"""``bci-train run``: the KD student beside its baselines, references and controls, the report, and the
best student exported from memory: all of it."""

from __future__ import annotations

import argparse
from pathlib import Path

from bci_stream.io.safe_write import check_writable_folder, check_writable_target
from offline_training.commands._common import (
    add_command,
    add_training_args,
    class_oracle,
    fitted_config,
    load,
    preprocessing_of,
)
from offline_training.training.soft_labels import soft_labels_for  # the sweep's too (tests/test_sweep.py)


def add_parser(sub) -> None:
    p = add_command(sub, "run", help="KD student + baselines + controls, report, export: all of it")
    add_training_args(p)
    p.add_argument("--export", help="model.onnx path (default RUN_DIR/model.onnx)")
    p.add_argument("--no-controls", action="store_true", help="skip the controls (by block, leave subject out, "
                   "shuffled labels, drift probe)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the braindecode baselines (the shrinkage-LDA reference always runs)")
    p.add_argument("--no-lstm", action="store_true", dest="no_baselines", help=argparse.SUPPRESS)  # old name
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Checks first, the data once (with its phantom), :func:`~offline_training.experiments.pipeline.compare`
    on one split, then the best student's model (held in memory) exported with its metrics."""
    from offline_training.experiments.pipeline import CompareConfig, compare
    from offline_training.training.device import resolve_device
    from offline_training.training.export import export_onnx
    from offline_training.training.splits import check_split_name

    check_split_name(args.split)
    resolve_device(args.device)  # a missing GPU is said before any work
    check_writable_folder(args.out)  # and a run folder or a model path that cannot be written
    out = Path(args.export or Path(args.out) / "model.onnx")
    check_writable_target(out)
    data = load(args.data, preprocessing_of(args))
    config = fitted_config(args, data.trials)
    soft, teacher = soft_labels_for(data.trials, args.teacher, not args.no_kd, required=False)
    plan = CompareConfig(controls=not args.no_controls)
    result = compare(data.trials, args.out, config, soft, teacher, oracle=class_oracle(data), split=args.split,
                     plan=plan.without_baselines() if args.no_baselines else plan)
    print((Path(args.out) / "report.md").read_text())
    path, _ = export_onnx(result.best.fit, out, hop=args.hop, metrics=result.best.metrics)
    print(f"exported {path}")
