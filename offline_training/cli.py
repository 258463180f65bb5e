"""``bci-train``: teacher soft labels, fit, evaluate, export, or all of it in one ``run``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from bci_stream.contract.features import SPECTROGRAM_MODES, ErpConfig, SpectrogramConfig
from bci_stream.io.safe_write import check_writable_folder, check_writable_target, write_text
from bci_stream.contract.trials import Trials
from offline_training.training.config import TrainConfig
from offline_training.datasets import load_trials, parse_spec, split_specs
from offline_training.training.soft_labels import soft_labels_for


def _phantom_for(spec: str | list[str]):
    """The :class:`~bci_stream.sources.phantom.Phantom` when the data is one phantom spec, else None."""
    specs = split_specs(spec)
    if len(specs) != 1:
        return None
    kind, _, opts = parse_spec(specs[0])
    if kind != "phantom":
        return None
    from bci_stream.sources.phantom import Phantom
    from offline_training.datasets.phantom import phantom_config

    return Phantom(phantom_config(**opts))


def _oracle_for(spec: str | list[str]):
    """The phantom's oracle when the data is one phantom spec, else None."""
    phantom = _phantom_for(spec)
    return None if phantom is None else phantom.oracle_probabilities


def _image_embeddings(spec, cache: str | None):
    """The image embeddings of the embedding objective: ``--embeddings CACHE``, or the semantic phantom's own."""
    from offline_training.training.image_embeddings import from_phantom, load_image_embeddings

    if cache:
        return load_image_embeddings(cache)
    phantom = _phantom_for(spec)
    if phantom is not None and phantom.config.semantic:
        return from_phantom(phantom)
    raise ValueError("the embedding objective needs image embeddings: pass --embeddings CACHE (from `bci-train "
                     "embed-images`), or train on the semantic phantom (phantom:...,semantic=1)")


def _train_config(args) -> TrainConfig:
    from offline_training.students.registry import student_spec

    d = TrainConfig()
    crop = args.crop or (d.crop_start, d.crop_stop)
    spec = student_spec(args.student)
    mode = args.spectrogram_mode or ("log" if args.log_spectrogram else spec.mode or d.spectrogram.mode)
    fmax = args.fmax if args.fmax is not None else spec.fmax
    objective = getattr(args, "objective", d.objective)
    return TrainConfig(
        objective=objective, mse_weight=getattr(args, "mse_weight", d.mse_weight),
        student=args.student, features=args.features, kd=not args.no_kd and objective == "classes", alpha=args.alpha,
        temperature=args.temperature, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        patience=args.patience, crop_start=crop[0], crop_stop=crop[1], threads=args.threads, jitter=args.jitter,
        device=args.device, amp=args.amp, memmap_mb=args.memmap_mb, reject=args.reject,
        spectrogram=SpectrogramConfig(nperseg=args.nperseg or d.spectrogram.nperseg, mode=mode, fmax=fmax),
        erp=ErpConfig(cutoff=args.erp_cutoff, numtaps=args.erp_taps, decimate=args.erp_decimate),
    )


def _fitted_config(args, trials: Trials) -> TrainConfig:
    """The training config at the data's rate (window and STFT segment in seconds, see ``for_data``)."""
    from offline_training.experiments.pipeline import for_data

    return for_data(_train_config(args), trials, window=args.window, segment=args.segment,
                    crop_given=args.crop is not None, nperseg_given=args.nperseg is not None)


def _preprocessing(args):
    """The :class:`Preprocessing` the filter options ask for (None when they ask for nothing)."""
    from bci_stream.contract.preprocessing import FilterDesign, Preprocessing

    filters = []
    if args.highpass is not None:
        filters.append(FilterDesign(kind="highpass", freqs=(args.highpass,), order=args.filter_order))
    if args.lowpass is not None:
        filters.append(FilterDesign(kind="lowpass", freqs=(args.lowpass,), order=args.filter_order))
    if args.bandpass is not None:
        filters.append(FilterDesign(kind="bandpass", freqs=tuple(args.bandpass), order=args.filter_order))
    for hz in args.notch or []:
        filters.append(FilterDesign(kind="notch", freqs=(hz,), order=args.filter_order))
    pre = Preprocessing(filters=tuple(filters), reference=args.reference, decimate=args.decimate)
    return None if pre.is_identity else pre


def _load(args, spec=None, preprocessing=None, asr=None) -> Trials:
    trials = load_trials(spec if spec is not None else args.data, preprocessing=preprocessing, asr=asr)
    print(trials.summary())
    return trials


def cmd_embed_images(args) -> None:
    """Embed every image under DIR once with an open_clip image tower; the cache is a gallery index file
    (:mod:`bci_stream.retrieval.index`) keyed by image id = file stem, the targets of ``fit --objective embedding``."""
    from bci_stream.retrieval.index import GalleryIndex, save_gallery
    from bci_stream.retrieval.image_embedder import ImageEmbedder, list_images

    check_writable_target(args.out)  # a device, FIFO or read-only folder is said before the embedding work
    paths, ids, labels = list_images(args.dir)
    if not paths:
        raise ValueError(f"no images (.jpg, .jpeg, .png, .bmp, .webp) under {args.dir}")
    embedder = ImageEmbedder(args.model, args.pretrained, device=args.device, model_config=args.model_config)
    print(f"embedding {len(paths)} images from {args.dir} with {embedder.space} on {embedder.device}", flush=True)
    embeddings, thumbnails = embedder.embed_files(paths, batch=args.batch_size, thumb=args.thumb or None)
    cache = GalleryIndex(embeddings=embeddings, ids=ids, labels=labels, space=embedder.space,
                         checkpoint_sha256=embedder.checkpoint_sha256, thumbnails=thumbnails)
    path = save_gallery(cache, args.out)
    print(f"wrote {path}: {cache.describe()}")


def cmd_teacher(args) -> None:
    from offline_training.training.teacher import TeacherConfig, compute_soft_labels

    check_writable_target(args.out)
    trials = _load(args)
    config = TeacherConfig(model=args.model, pretrained=args.pretrained, model_config=args.model_config,
                           batch_size=args.batch_size)
    path = compute_soft_labels(trials.image_ids.tolist(), args.images, trials.class_names, config, args.out)
    print(f"teacher {config.name}: soft labels for {len(np.unique(trials.image_ids))} images -> {path}")


def cmd_fit(args) -> None:
    from offline_training.training.device import resolve_device
    from offline_training.experiments.pipeline import train_and_test
    from offline_training.training.splits import check_split_name

    check_split_name(args.split)
    resolve_device(args.device)  # a missing GPU is said before any work
    check_writable_folder(args.out)  # and a run folder that cannot be written
    if args.objective == "embedding":
        return _fit_embedding(args)
    trials = _load(args, preprocessing=_preprocessing(args), asr=args.asr)
    config = _fitted_config(args, trials)
    soft, teacher = soft_labels_for(trials, args.teacher, config.kd)
    metrics = train_and_test(trials, args.split, config, args.out, soft, teacher, oracle=_oracle_for(args.data),
                             resume=args.resume)
    _print_metrics(metrics)
    print(f"wrote {args.out}/metrics.json, report.md, confusion.png, learning_curve.png")


def _fit_embedding(args) -> None:
    """``fit --objective embedding``: InfoNCE against the image embeddings, k-way zero-shot retrieval on the
    held-out classes (``--split auto`` is ``by-class``), the phantom's retrieval oracle beside it."""
    from offline_training.experiments.zero_shot import print_zero_shot, train_and_test_embedding

    targets = _image_embeddings(args.data, args.embeddings)  # said before the data loads
    trials = _load(args, preprocessing=_preprocessing(args), asr=args.asr)
    config = _fitted_config(args, trials)
    phantom = _phantom_for(args.data)
    oracle = phantom.retrieval_oracle if phantom is not None and phantom.config.semantic else None
    split = "by-class" if args.split == "auto" else args.split
    metrics = train_and_test_embedding(trials, split, config, args.out, targets, oracle=oracle, per=args.candidates,
                                       resume=args.resume)
    print_zero_shot(metrics)
    print(f"wrote {args.out}/metrics.json, report.md, learning_curve.png")


def cmd_things_eeg2(args) -> None:
    """THINGS-EEG2 200-way zero-shot, intra-subject and leave-subject-out, in the anchors' table layout."""
    from offline_training.training.image_embeddings import load_image_embeddings
    from offline_training.experiments.things_recipe import ThingsRecipe, parse_subjects, run_recipe, with_defaults

    recipe = ThingsRecipe(eeg_root=args.eeg, metadata=args.metadata, subjects=parse_subjects(args.subjects),
                          modes=tuple(args.mode), average_train=args.average_train, window=tuple(args.window))
    targets = load_image_embeddings(args.embeddings)
    run_recipe(recipe, with_defaults(_train_config(args)), targets, args.out)


def cmd_evaluate(args) -> None:
    """Re-test a run on its saved split; writes ``evaluation.md``/``evaluation.json``/``evaluation_confusion.png``
    beside (never over) the run's own ``report.md`` and ``metrics.json``."""
    from offline_training.experiments.evaluate import confusion_png, evaluate, report_markdown
    from offline_training.experiments.pipeline import run_info, test_probabilities

    run_dir = Path(args.run_dir)
    for name in ("run.json", "split.json", "model.safetensors"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir} is not a run folder (no {name}); give the --out folder of `bci-train fit`")
    info = json.loads((run_dir / "run.json").read_text())
    split = json.loads((run_dir / "split.json").read_text())
    if info["train_config"].get("objective") == "embedding":
        return _evaluate_embedding(args, run_dir, info, split)
    preprocessing = None
    if info.get("preprocessing"):
        from bci_stream.contract.preprocessing import Preprocessing

        preprocessing = Preprocessing.from_dict(info["preprocessing"])
    asr = None
    if (info.get("artifacts") or {}).get("asr"):  # the run's own ASR state, not a new calibration
        from bci_stream.contract.artifacts import AsrState

        asr = AsrState.from_dict(info["artifacts"]["asr"])
    trials = _load(args, args.data or info["data"], preprocessing, asr)
    test = np.asarray(split["test"], dtype=np.int64)
    if len(test) and test.max() >= len(trials):
        raise ValueError(f"the saved split indexes {test.max() + 1} trials but the data has {len(trials)}; "
                         "evaluate on the data the run was trained on")
    probs = test_probabilities(run_dir, trials, test)
    metrics = evaluate(probs, trials.labels[test], trials.subjects[test], split["name"])
    write_text(run_dir / "evaluation.json", json.dumps(metrics, indent=1))
    confusion_png(probs, trials.labels[test], trials.class_names, run_dir / "evaluation_confusion.png",
                  f"test split '{split['name']}' — top-1 {metrics['top1']:.3f} (n={len(test)})")
    from offline_training.training.fit import TrainConfig as _TC

    extra = run_info(trials, _TC.from_dict(info["train_config"]), split["name"], split.get("reason", "saved split"))
    write_text(run_dir / "evaluation.md", report_markdown([(info["train_config"]["student"], metrics)], trials.source,
                                                           run_info=extra))
    _print_metrics(metrics)
    print(f"wrote {run_dir}/evaluation.md, evaluation.json, evaluation_confusion.png")


def _evaluate_embedding(args, run_dir: Path, info: dict, split: dict) -> None:
    """Re-test an embedding run by retrieval on its saved split (``evaluation.json``/``evaluation.md``)."""
    from offline_training.training.contrastive import unit_rows
    from offline_training.experiments.evaluate import report_markdown
    from offline_training.experiments.zero_shot import print_zero_shot, test_embedding_run

    data = args.data or info["data"]
    targets = _image_embeddings(data, args.embeddings)
    trials = _load(args, data)
    test = np.asarray(split["test"], dtype=np.int64)
    if len(test) and test.max() >= len(trials):
        raise ValueError(f"the saved split indexes {test.max() + 1} trials but the data has {len(trials)}; "
                         "evaluate on the data the run was trained on")
    if targets.space != info["embedding"]["space"]:
        raise ValueError(f"the run was trained in {info['embedding']['space']} but the embeddings are in "
                         f"{targets.space}; pass the --embeddings cache it was trained with")
    phantom = _phantom_for(data)
    oracle = phantom.retrieval_oracle if phantom is not None and phantom.config.semantic else None
    metrics, _, _ = test_embedding_run(run_dir, trials, test, split["name"],
                                       unit_rows(targets.for_trials(trials.image_ids)), split.get("candidates", "class"),
                                       oracle)
    oracle_row = metrics.pop("oracle", None)
    write_text(run_dir / "evaluation.json", json.dumps(metrics, indent=1))
    rows = [(info["train_config"]["student"], metrics)] + ([("oracle", oracle_row)] if oracle_row else [])
    write_text(run_dir / "evaluation.md", report_markdown(rows, trials.source))
    print_zero_shot(metrics)
    print(f"wrote {run_dir}/evaluation.md, evaluation.json")


def cmd_export(args) -> None:
    from offline_training.training.export import export_onnx

    run_dir, sweep = args.run_dir, None
    if args.best:  # RUN_DIR is a sweep folder: its best finished trial, the card recording the sweep
        from offline_training.sweep.runner import best_run

        run_dir, sweep = best_run(args.run_dir)
        print(f"best trial {sweep['trial']} of {sweep['trials']} ({sweep['metric']} {sweep['value']:.4f}, "
              f"subject {sweep['subject']}, seed {sweep['seed']})")
    out = args.out or str(Path(args.run_dir) / "model.onnx")
    check_writable_target(out)
    path, diff = export_onnx(run_dir, out, hop=args.hop, sweep=sweep)
    print(f"exported {path} ({path.stat().st_size / 1e6:.2f} MB, parity {diff:.1e})")


def cmd_sweep(args) -> None:
    from offline_training.sweep.runner import config_from_args, run_sweep

    run_sweep(config_from_args(args), resume=args.resume, verbose=args.verbose)


def _add_sweep_parser(sub) -> None:
    from offline_training.sweep.runner import SCHEDULERS, SweepConfig

    d = SweepConfig()
    p = sub.add_parser("sweep", help="students, features and hyperparameters over subjects and seeds, on Ray Tune")
    p.add_argument("--data", help="data SPEC, resolved on the Ray workers (its paths must exist there); "
                                  "not needed with --resume")
    p.add_argument("--space", help="search space, .yaml or .json (see examples/sweep_small.yaml); "
                                   "not needed with --resume")
    p.add_argument("--out", required=True, help="SWEEP_DIR: Ray Tune's experiment folder, one run folder per trial, "
                                                "sweep.md and sweep.csv (on storage every node sees)")
    p.add_argument("--trials", type=int, default=d.trials,
                   help="trials in all: sampled configurations x the space's subjects x seeds (a multiple of the grid; "
                        "default %(default)s)")
    p.add_argument("--address", default=d.address,
                   help="HOST:PORT of a running Ray cluster (`ray start --head` prints it); default: a local Ray "
                        "on this machine")
    p.add_argument("--cpus-per-trial", type=float, default=d.cpus_per_trial,
                   help="CPUs Ray reserves per trial (torch threads in the trial; default %(default)s)")
    p.add_argument("--gpus-per-trial", type=float, default=d.gpus_per_trial, help="GPUs Ray reserves per trial (> 0: each trial trains on its reserved GPU)")
    p.add_argument("--num-cpus", type=int, default=d.num_cpus, help="CPUs of a local Ray (default: all)")
    p.add_argument("--scheduler", choices=SCHEDULERS, default=d.scheduler,
                   help="asha stops trailing trials early; fifo runs every trial to its end")
    p.add_argument("--grace-period", type=int, default=d.grace_period, help="ASHA: epochs before the first cut")
    p.add_argument("--reduction-factor", type=float, default=d.reduction_factor,
                   help="ASHA: keep the best 1 in this many at each rung")
    p.add_argument("--teacher", default=d.teacher,
                   help="soft-label cache from `bci-train teacher` (the phantom brings its own)")
    p.add_argument("--stop-after", type=int, default=d.stop_after, metavar="N",
                   help="end this session once N trials have ended, as Ctrl-C would; --resume continues")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted sweep in --out (its data, space and trials come from sweep.json)")
    p.set_defaults(func=cmd_sweep)


def cmd_run(args) -> None:
    from offline_training.training.device import resolve_device
    from offline_training.training.export import export_onnx
    from offline_training.experiments.pipeline import compare
    from offline_training.training.splits import check_split_name

    check_split_name(args.split)
    resolve_device(args.device)  # a missing GPU is said before any work
    check_writable_folder(args.out)  # and a run folder or a model path that cannot be written
    check_writable_target(args.export or Path(args.out) / "model.onnx")
    trials = _load(args, preprocessing=_preprocessing(args))
    config = _fitted_config(args, trials)
    soft, teacher = soft_labels_for(trials, args.teacher, not args.no_kd, required=False)
    compare(trials, args.out, config, soft, teacher, oracle=_oracle_for(args.data),
            controls=not args.no_controls, lstm=not args.no_baselines, split=args.split)
    print((Path(args.out) / "report.md").read_text())
    path, _ = export_onnx(args.out, args.export or Path(args.out) / "model.onnx", hop=args.hop)
    print(f"exported {path}")


def _print_metrics(metrics: dict) -> None:
    lo, hi = metrics["top1_ci"]
    line = f"test split '{metrics['split']}': top-1 {metrics['top1']:.3f} [95 % CI {lo:.2f}-{hi:.2f}], " \
           f"p = {metrics['top1_p']:.2g} vs chance {metrics['chance_top1']:.3f}; " \
           + "".join(f"top-{k} {metrics[f'top{k}']:.3f}, " for k in (3, 5) if metrics.get(f"top{k}") is not None) \
           + f"(n={metrics['n']})"
    if metrics.get("auc") is not None:
        line += f"; ROC AUC {metrics['auc']:.3f} [95 % CI {metrics['auc_ci'][0]:.2f}-{metrics['auc_ci'][1]:.2f}], " \
                f"balanced accuracy {metrics['balanced_accuracy']:.3f}"
    if "oracle_top1" in metrics:
        line += f"; oracle top-1 {metrics['oracle_top1']:.3f}"
    print(line)


def _add_training_args(p: argparse.ArgumentParser) -> None:
    from bci_stream.contract.model_card import ModelCard

    d = TrainConfig()
    p.add_argument("--data", required=True, nargs="+", metavar="SPEC",
                   help="data SPEC(s), e.g. phantom:subjects=6,classes=40 | eegimagenet:PATH | "
                        "mne:/data/sub-*/run*.fif,mapping=classes.tsv | bids:ROOT,task=T | xdf:FILE,classes=auto")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--split", default="auto",
                   help="auto (the most meaningful the data allows; by-class for --objective embedding) | by-image | "
                        "by-class | by-run | by-session | by-block | time-blocked | shuffled | loso-<subject> "
                        "(default: %(default)s)")
    p.add_argument("--teacher", help="soft-label cache from `bci-train teacher` (the phantom brings its own)")
    p.add_argument("--student", default=d.student, choices=["ccanet", "seed", "cnn", "phase", "eegnet", "shallow", "deep4"],
                   help="ccanet: CCA spectrum + time course with an LDA-initialised read-out (works on SSVEP, ERPs and the phantom); seed (alias cnn): the seed's CNN on |STFT|; phase: ShallowNet's order on the complex "
                        "STFT; eegnet | shallow | deep4: braindecode models on the erp features "
                        "(default: %(default)s)")
    p.add_argument("--features", default=d.features, choices=["auto", "spectrogram", "erp"],
                   help="feature kind (default %(default)s: the student's own)")
    p.add_argument("--no-kd", action="store_true", help="hard labels only (the plain baseline)")
    p.add_argument("--alpha", type=float, default=d.alpha, help="weight of the hard-label loss")
    p.add_argument("--temperature", type=float, default=d.temperature, help="KD temperature")
    p.add_argument("--epochs", type=int, default=d.epochs, help="epochs (default %(default)s)")
    p.add_argument("--patience", type=int, default=d.patience, help="epochs without validation improvement before stopping (default %(default)s)")
    p.add_argument("--reject", type=float, default=d.reject, metavar="UV",
                   help="leave training epochs whose peak-to-peak exceeds UV (signal unit) on any channel out of "
                        "training (MNE's reject rule; every test trial is still decided), e.g. 100 for blinks")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="(default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="AdamW learning rate (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="seeds torch, numpy, batch order and the split (default %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default=d.device, help="auto (CUDA when a working GPU is there, else the CPU) | cpu | "
                   "cuda | cuda:N: where the student, batches and loss live (default %(default)s)")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA (bf16; fp16 with loss scaling on "
                   "cards without bf16); weights stay float32 and the ONNX parity check is against them; "
                   "ignored on the CPU")
    p.add_argument("--memmap-mb", type=float, default=d.memmap_mb, help="inputs larger than this (MiB) are "
                   "memory-mapped from RUN_DIR/inputs.npy during training instead of held in memory "
                   "(default %(default)s)")
    p.add_argument("--window", type=float, nargs=2, metavar=("START", "STOP"),
                   help="seconds from stimulus onset the model sees (default: the seed's "
                        f"{d.crop_start / d.spectrogram.sfreq:g}-{d.crop_stop / d.spectrogram.sfreq:g} s at any rate)")
    p.add_argument("--crop", type=int, nargs=2, metavar=("START", "STOP"),
                   help=f"the window in samples of each epoch instead (default {d.crop_start} {d.crop_stop} at "
                        f"{d.spectrogram.sfreq:g} Hz, scaled to the data's rate)")
    p.add_argument("--segment", type=float, help="STFT segment, seconds (default: "
                   f"{d.spectrogram.nperseg / d.spectrogram.sfreq:g} s, the seed's nperseg {d.spectrogram.nperseg} at "
                   f"{d.spectrogram.sfreq:g} Hz)")
    p.add_argument("--nperseg", type=int, help="STFT segment in samples instead")
    p.add_argument("--log-spectrogram", action="store_true", help="log-magnitude features (= --spectrogram-mode log)")
    p.add_argument("--spectrogram-mode", choices=SPECTROGRAM_MODES,
                   help="magnitude | log | complex (default: the student's; complex for phase, else magnitude)")
    p.add_argument("--fmax", type=float, help="keep STFT bins at or below this frequency, Hz (default: the "
                   "student's; 60 for phase, else all)")
    e = ErpConfig()
    p.add_argument("--erp-cutoff", type=float, default=e.cutoff, help="erp features: FIR low-pass cut-off, Hz "
                   f"(default %(default)s at {e.sfreq:g} Hz)")
    p.add_argument("--erp-taps", type=int, default=e.numtaps, help="erp features: FIR length in samples at "
                   f"{e.sfreq:g} Hz, scaled to the data's rate (default %(default)s)")
    p.add_argument("--erp-decimate", type=int, default=e.decimate, help="erp features: keep every K-th filtered "
                   f"sample at {e.sfreq:g} Hz, scaled to the data's rate (default %(default)s)")
    p.add_argument("--jitter", type=float, default=d.jitter, help="onset-jitter augmentation, seconds each side "
                   "(erp features; default %(default)s: off)")
    p.add_argument("--hop", type=float, default=ModelCard.hop, help="live decision hop written to the card, seconds")
    _add_preprocessing_args(p)


def _add_embedding_args(p: argparse.ArgumentParser) -> None:
    """The embedding objective (open-vocabulary decoding): InfoNCE against image embeddings, zero-shot test."""
    from offline_training.training.config import CANDIDATES, OBJECTIVES

    d = TrainConfig()
    g = p.add_argument_group("embedding objective (open-vocabulary: the student outputs an image embedding)")
    g.add_argument("--objective", choices=OBJECTIVES, default=d.objective,
                   help="classes: class probabilities (KD); embedding: symmetric InfoNCE with a learnable temperature "
                        "against each trial's image embedding, tested by k-way zero-shot retrieval on held-out classes "
                        "(--split auto means by-class) (default %(default)s)")
    g.add_argument("--mse-weight", type=float, default=d.mse_weight,
                   help="embedding: weight of the squared distance added to InfoNCE (default %(default)s)")
    g.add_argument("--embeddings", metavar="CACHE",
                   help="embedding: image embeddings by image id from `bci-train embed-images` (the semantic phantom, "
                        "phantom:...,semantic=1, brings its own)")
    g.add_argument("--candidates", choices=CANDIDATES, default=CANDIDATES[0],
                   help="embedding: retrieve among the held-out classes' mean embeddings (class) or the held-out "
                        "images' own (image: THINGS-EEG2's test set) (default %(default)s)")


def _add_preprocessing_args(p: argparse.ArgumentParser) -> None:
    """Causal filters applied to each recording from its first sample, as the live decoder applies them."""
    from bci_stream.contract.preprocessing import FilterDesign, Preprocessing

    d, order = Preprocessing(), FilterDesign.__dataclass_fields__["order"].default
    g = p.add_argument_group("preprocessing (causal; stored in the model card and applied live)")
    g.add_argument("--highpass", type=float, metavar="HZ", help="Butterworth high-pass, Hz")
    g.add_argument("--lowpass", type=float, metavar="HZ", help="Butterworth low-pass, Hz")
    g.add_argument("--bandpass", type=float, nargs=2, metavar=("LO", "HI"), help="Butterworth band-pass, Hz")
    g.add_argument("--notch", type=float, action="append", metavar="HZ", help="notch (mains) filter, Hz; repeatable")
    g.add_argument("--filter-order", type=int, default=order, help="order of each filter (default %(default)s)")
    g.add_argument("--reference", default=d.reference,
                   help="none | average | CH[,CH...] re-reference (default %(default)s)")
    g.add_argument("--decimate", type=int, default=d.decimate, metavar="K",
                   help="keep every K-th sample after the filters (default %(default)s)")


# Copied from TeacherConfig's defaults (offline_training/training/teacher.py imports torch at import time, which
# `bci-train --help` must not wait for); tests/test_cli_help.py checks that the twins agree.
TEACHER_DEFAULTS = {"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "batch_size": 32}

DATA_SPECS = """data SPECs (--data takes one or several; they load as one set of trials):
  phantom:subjects=6,classes=40,channels=128,images=50,seed=0,snr=1   the phantom headset
      (semantic=1,embed_dim=64: images' embeddings drive the EEG, for --objective embedding)
  eegimagenet:PATH.pth[,splits=SPLITS.pth,split=0,subject=N]           ImageNet-EEG's release
  mne:PATH[,tmin=0,tmax=0.5,mapping=FILE|classes=auto,markers=GLOB,event_field=F,subject=,session=,run=]
      any file MNE reads (FIF, EDF, BDF, BrainVision, EEGLAB .set, GDF, CNT); PATH may be a glob
  xdf:PATH[,same keys as mne]                                          LabRecorder files
  bids:ROOT[,task=,subject=,session=,run=, same keys as mne]           a BIDS dataset (mne-bids)
  things:PATH[,average=0|1]                                            THINGS-EEG2 preprocessed
mapping FILE: TSV/CSV rows marker<TAB>class_id[<TAB>class_name], or JSON {marker: [class_id, name]}.

examples:
  bci-train run --data phantom:subjects=6,classes=40 --out runs/phantom
  bci-train run --data mne:eeglab_data.set,event_field=position,mapping=examples/eeglab_square_position.tsv,tmin=-0.2,tmax=0.8 \\
      --bandpass 1 30 --window 0 0.8 --segment 0.25 --out runs/eeglab
  bci-train export runs/phantom --out my_model.onnx
"""


def build_parser() -> argparse.ArgumentParser:
    from bci_stream import __version__
    from bci_stream.commands._common import HelpFormatter
    from bci_stream.contract.model_card import ModelCard

    parser = argparse.ArgumentParser(prog="bci-train", description=__doc__, epilog=DATA_SPECS,
                                     formatter_class=HelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more; print tracebacks of errors")
    parser.add_argument("--version", action="version", version=f"bci-train (bci-stream {__version__})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    original_add = sub.add_parser
    sub.add_parser = lambda *a, **k: original_add(*a, formatter_class=HelpFormatter, epilog=DATA_SPECS, **k)

    p = sub.add_parser("teacher", help="CLIP soft labels for the stimulus images (cached)")
    p.add_argument("--data", required=True, nargs="+", metavar="SPEC", help="data SPEC(s): which images, which classes")
    p.add_argument("--images", required=True, help="folder of stimulus images (<id>.JPEG or <synset>/<id>.JPEG)")
    p.add_argument("--out", required=True, help="cache file (.safetensors)")
    p.add_argument("--model", default=TEACHER_DEFAULTS["model"], help="open_clip model name")
    p.add_argument("--pretrained", default=TEACHER_DEFAULTS["pretrained"], help="open_clip tag or local checkpoint path")
    p.add_argument("--model-config", help="JSON config of a custom open_clip model")
    p.add_argument("--batch-size", type=int, default=TEACHER_DEFAULTS["batch_size"], help="images per forward pass")
    p.set_defaults(func=cmd_teacher)

    p = sub.add_parser("embed-images", help="open_clip image embeddings of every image in DIR, cached by image id "
                                            "(the targets of fit --objective embedding)")
    p.add_argument("dir", help="folder of images, searched recursively (<concept>/<image>.jpg or <id>.JPEG); "
                               "the image id is the file stem")
    p.add_argument("--out", required=True, help="cache file (.safetensors; a gallery index: bci-stream live can "
                                                "retrieve from it too)")
    p.add_argument("--model", default=TEACHER_DEFAULTS["model"], help="open_clip model name (default %(default)s)")
    p.add_argument("--pretrained", default=TEACHER_DEFAULTS["pretrained"],
                   help="open_clip tag in the local cache, or a local weights file (default %(default)s)")
    p.add_argument("--model-config", help="JSON config of a custom open_clip model")
    p.add_argument("--batch-size", type=int, default=TEACHER_DEFAULTS["batch_size"], help="images per forward pass")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where the image tower runs")
    p.add_argument("--thumb", type=int, default=0, help="also store thumbnails of this side, pixels (default 0: none)")
    p.set_defaults(func=cmd_embed_images)

    p = sub.add_parser("fit", help="train one student, test it, write RUN_DIR")
    _add_training_args(p)
    _add_embedding_args(p)
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR's last checkpoint")
    p.add_argument("--asr", type=float, default=None, metavar="CUTOFF",
                   help="Artifact Subspace Reconstruction (meegkit) after the filters, calibrated on the data's "
                        "recordings (continuous specs; needs --highpass or --bandpass); CUTOFF in standard "
                        "deviations (5 aggressive, 20 conservative); stored in the card and applied live (default: off)")
    p.set_defaults(func=cmd_fit)

    from offline_training.experiments.things_recipe import MODES, ThingsRecipe

    r = ThingsRecipe("", "")
    p = sub.add_parser("things-eeg2", help="THINGS-EEG2 200-way zero-shot (intra-subject, leave-subject-out) in the "
                                           "anchors' table")
    p.add_argument("--eeg", required=True, help="folder of sub-XX/preprocessed_eeg_{training,test}.npy")
    p.add_argument("--metadata", required=True, help="the release's image_metadata.npy (image files and concepts)")
    p.add_argument("--embeddings", required=True, metavar="CACHE",
                   help="`bci-train embed-images` of the release's training_images/ and test_images/ (one cache)")
    p.add_argument("--out", required=True, help="folder: <mode>/sub-XX run folders, table.md, table.json")
    p.add_argument("--subjects", default=f"{r.subjects[0]}-{r.subjects[-1]}", help="e.g. 1-10 or 1,3 (default %(default)s)")
    p.add_argument("--mode", nargs="+", choices=MODES, default=list(r.modes), help="(default: both)")
    p.add_argument("--average-train", action="store_true", help="average each training image's repetitions")
    p.add_argument("--window", type=float, nargs=2, default=list(r.window), metavar=("START", "STOP"),
                   help="seconds from stimulus onset the model sees (default %(default)s)")
    p.add_argument("--student", default="eegnet", choices=["ccanet", "seed", "phase", "eegnet", "shallow", "deep4"],
                   help="the EEG encoder (default %(default)s)")
    d = TrainConfig()
    for flag, value, what in (("--epochs", d.epochs, int), ("--patience", d.patience, int),
                              ("--batch-size", 256, int), ("--lr", d.lr, float), ("--seed", d.seed, int),
                              ("--mse-weight", d.mse_weight, float)):
        p.add_argument(flag, type=what, default=value, help="(default %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda (default %(default)s)")
    p.set_defaults(func=cmd_things_eeg2, features="auto", no_kd=True, alpha=d.alpha, temperature=d.temperature,
                   crop=None, jitter=0.0, amp=False, memmap_mb=d.memmap_mb, reject=d.reject, nperseg=None, spectrogram_mode=None,
                   log_spectrogram=False, fmax=None, erp_cutoff=ErpConfig().cutoff, erp_taps=ErpConfig().numtaps,
                   erp_decimate=ErpConfig().decimate, objective="embedding")

    p = sub.add_parser("evaluate", help="re-test RUN_DIR on its saved split (writes evaluation.md/.json)")
    p.add_argument("run_dir", help="a run folder of `bci-train fit` or `run`")
    p.add_argument("--data", nargs="+", metavar="SPEC", help="data SPEC(s) (default: the ones it was trained on)")
    p.add_argument("--embeddings", metavar="CACHE", help="embedding runs: the image embedding cache it was trained "
                   "with (the semantic phantom brings its own)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="ONNX with the model card, parity-checked")
    p.add_argument("run_dir", help="run folder (or a sweep folder with --best)")
    p.add_argument("--best", action="store_true",
                   help="RUN_DIR is a sweep folder: export its best trial (on the sweep's validation metric)")
    p.add_argument("--out", help="model.onnx path (default RUN_DIR/model.onnx)")
    p.add_argument("--hop", type=float, default=ModelCard.hop, help="live decision hop written to the card, seconds")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("run", help="KD student + baselines + controls, report, export: all of it")
    _add_training_args(p)
    p.add_argument("--export", help="model.onnx path (default RUN_DIR/model.onnx)")
    p.add_argument("--no-controls", action="store_true", help="skip the controls (by block, leave subject out, "
                   "shuffled labels, drift probe)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the braindecode baselines (the shrinkage-LDA reference always runs)")
    p.add_argument("--no-lstm", action="store_true", dest="no_baselines", help=argparse.SUPPRESS)  # old name
    p.set_defaults(func=cmd_run)

    _add_sweep_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``bci-train``: the error policy of :mod:`bci_stream.errors`, as ``bci-stream`` (one line
    ``bci-train <command>: error: ...``, exit 2 for user errors; ``-v`` adds the traceback)."""
    from bci_stream.errors import run_reporting_errors

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_reporting_errors("bci-train", args.command, args.verbose, lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
