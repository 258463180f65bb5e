"""``bci-train evaluate``: re-test a run on its saved split (``evaluation.md``/``.json`` beside, never over,
the run's own ``report.md`` and ``metrics.json``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bci_stream.io.safe_write import write_text
from offline_training.commands._common import (
    add_command,
    class_oracle,
    image_embeddings,
    load,
    retrieval_oracle,
)


def add_parser(sub) -> None:
    p = add_command(sub, "evaluate", help="re-test RUN_DIR on its saved split (writes evaluation.md/.json)")
    p.add_argument("run_dir", help="a run folder of `bci-train fit` or `run`")
    p.add_argument("--data", nargs="+", metavar="SPEC", help="data SPEC(s) (default: the ones it was trained on)")
    p.add_argument("--embeddings", metavar="CACHE", help="embedding runs: the image embedding cache it was trained "
                   "with (the semantic phantom brings its own)")
    p.set_defaults(func=run)


def _classes_test(args, data, info: dict, split: dict):
    from offline_training.experiments.pipeline import ClassesTest

    return ClassesTest(oracle=class_oracle(data))


def _embedding_test(args, data, info: dict, split: dict):
    from offline_training.experiments.zero_shot import EmbeddingTest

    targets = image_embeddings(data, args.embeddings)
    if targets.space != info["embedding"]["space"]:
        raise ValueError(f"the run was trained in {info['embedding']['space']} but the embeddings are in "
                         f"{targets.space}; pass the --embeddings cache it was trained with")
    return EmbeddingTest(targets, split.get("candidates", "class"), retrieval_oracle(data))


# the test of each objective (what `fit` ran after training), by the run's objective
TESTS = {"classes": _classes_test, "embedding": _embedding_test}


def run(args: argparse.Namespace) -> None:
    """The run read once (model, ``run.json``, ``split.json``), its data loaded once (with the run's
    preprocessing), then the objective's own test on the saved test trials, the phantom's oracle beside it."""
    from bci_stream.contract.preprocessing import Preprocessing
    from offline_training.experiments.evaluate import confusion_png, report_markdown
    from offline_training.experiments.run import run_info
    from offline_training.training.export import load_run
    from offline_training.training.splits import RunSplit

    run_dir = Path(args.run_dir)
    for name in ("run.json", "split.json", "model.safetensors"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir} is not a run folder (no {name}); give the --out folder of `bci-train fit`")
    fitted, _ = load_run(run_dir)
    info, saved = fitted.info, json.loads((run_dir / "split.json").read_text())
    pre = Preprocessing.from_dict(info["preprocessing"]) if info.get("preprocessing") else None
    asr = None
    if (info.get("artifacts") or {}).get("asr"):  # the run's own ASR state, not a new calibration
        from bci_stream.contract.artifacts import AsrState

        asr = AsrState.from_dict(info["artifacts"]["asr"])
    data = load(args.data or info["data"], pre, asr=asr)
    split = RunSplit(saved["name"], saved.get("reason", "saved split"), {k: _indices(saved, k, len(data.trials))
                                                                          for k in ("train", "val", "test")})
    test = TESTS[fitted.config.objective](args, data, info, saved)
    outcome = test.test(fitted, data.trials, split)
    write_text(run_dir / "evaluation.json", json.dumps(outcome.metrics, indent=1))
    label = info["train_config"]["student"]
    confusion, _, _ = test.titles(label, outcome, split)
    if test.max_confusion is None or len(outcome.names) <= test.max_confusion:
        confusion_png(outcome.probabilities, outcome.truth, outcome.names, run_dir / "evaluation_confusion.png",
                      f"{confusion} — top-1 {outcome.metrics['top1']:.3f} (n={len(split.test)})")
    rows = [(label, outcome.metrics), *outcome.extra_rows]
    write_text(run_dir / "evaluation.md", report_markdown(rows, data.trials.source, test.notes(outcome.metrics) or None,
                                                           run_info=run_info(data.trials, fitted.config, split.name,
                                                                             split.reason)))
    _print(fitted.config.objective, outcome.metrics)
    print(f"wrote {run_dir}/evaluation.md, evaluation.json, evaluation_confusion.png")


def _indices(saved: dict, part: str, n_trials: int):
    """A saved part's indices, refused (one line) when they index past the data."""
    import numpy as np

    idx = np.asarray(saved[part], dtype=np.int64)
    if len(idx) and idx.max() >= n_trials:
        raise ValueError(f"the saved split indexes {idx.max() + 1} trials but the data has {n_trials}; "
                         "evaluate on the data the run was trained on")
    return idx


def _print(objective: str, metrics: dict) -> None:
    from offline_training.commands._common import print_metrics
    from offline_training.experiments.zero_shot import print_zero_shot

    {"classes": print_metrics, "embedding": print_zero_shot}[objective](metrics)
