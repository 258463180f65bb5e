"""``bci-train export``: ONNX with the model card, parity-checked."""

from __future__ import annotations

import argparse
from pathlib import Path

from bci_stream.io.safe_write import check_writable_target
from offline_training.commands._common import add_command


def add_parser(sub) -> None:
    from bci_stream.contract.model_card import ModelCard

    p = add_command(sub, "export", help="ONNX with the model card, parity-checked")
    p.add_argument("run_dir", help="run folder (or a sweep folder with --best)")
    p.add_argument("--best", action="store_true",
                   help="RUN_DIR is a sweep folder: export its best trial (on the sweep's validation metric)")
    p.add_argument("--out", help="model.onnx path (default RUN_DIR/model.onnx)")
    p.add_argument("--hop", type=float, default=ModelCard.hop, help="live decision hop written to the card, seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """The run folder (or a sweep's best trial, the card recording the sweep) read once, then exported."""
    from offline_training.training.export import export_onnx

    run_dir, sweep = args.run_dir, None
    if args.best:
        from offline_training.sweep.runner import best_run

        run_dir, sweep = best_run(args.run_dir)
        print(f"best trial {sweep['trial']} of {sweep['trials']} ({sweep['metric']} {sweep['value']:.4f}, "
              f"subject {sweep['subject']}, seed {sweep['seed']})")
    out = args.out or str(Path(args.run_dir) / "model.onnx")
    check_writable_target(out)
    path, diff = export_onnx(run_dir, out, hop=args.hop, sweep=sweep)
    print(f"exported {path} ({path.stat().st_size / 1e6:.2f} MB, parity {diff:.1e})")
