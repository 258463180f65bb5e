"""What several ``bci-train`` commands share: the data SPEC help, the training options (defaults from the
frozen :class:`~offline_training.training.config.TrainConfig`), the config they build, the data they load
(with its phantom, built once) and the one-line metrics print. Torch-free (``bci-train --help``)."""

from __future__ import annotations

import argparse

from bci_stream.commands._common import HelpFormatter
from bci_stream.contract.features import SPECTROGRAM_MODES, ErpConfig, SpectrogramConfig
from bci_stream.contract.trials import Trials
from offline_training.datasets import LoadedData, load_data, split_specs
from offline_training.students.registry import student_choices, student_spec, students_help
from offline_training.training.config import TrainConfig

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


def add_command(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A sub-parser with the shared formatter and the data SPEC epilog."""
    return sub.add_parser(name, formatter_class=HelpFormatter, epilog=DATA_SPECS, **kwargs)


def add_student_arg(p: argparse.ArgumentParser, default: str, aliases: bool = True) -> None:
    """``--student``: the registry's names (:data:`~offline_training.students.registry.STUDENTS`)."""
    p.add_argument("--student", default=default, choices=student_choices(aliases),
                   help=f"{students_help()} (default: %(default)s)")


def add_training_args(p: argparse.ArgumentParser) -> None:
    """The options of a training run (``fit``, ``run``); every default is :class:`TrainConfig`'s."""
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
    add_student_arg(p, d.student)
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
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default=d.device, help="auto (CUDA when a working GPU is there, else the CPU) | cpu | "
                   "cuda | cuda:N: where the student, batches and loss live (default %(default)s)")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA (bf16; fp16 with loss scaling on "
                   "cards without bf16); weights stay float32 and the ONNX parity check is against them; "
                   "ignored on the CPU")
    p.add_argument("--memmap-mb", type=float, default=d.memmap_mb, help="inputs larger than this (MiB) are "
                   "memory-mapped from RUN_DIR/inputs.npy during training instead of held in memory "
                   "(default %(default)s)")
    _add_window_args(p, d)
    _add_feature_args(p, d)
    p.add_argument("--hop", type=float, default=ModelCard.hop, help="live decision hop written to the card, seconds")
    add_preprocessing_args(p)


def _add_window_args(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """The window and STFT segment, in seconds (or samples)."""
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


def _add_feature_args(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """Spectrogram and erp feature options, and the onset jitter."""
    p.add_argument("--log-spectrogram", action="store_true", help="log-magnitude features (= --spectrogram-mode log)")
    p.add_argument("--spectrogram-mode", choices=SPECTROGRAM_MODES,
                   help="magnitude | log | complex (default: the student's; complex for phase, else magnitude)")
    p.add_argument("--fmax", type=float, help="keep STFT bins at or below this frequency, Hz (default: the "
                   "student's; 60 for phase, else all)")
    e = d.erp
    p.add_argument("--erp-cutoff", type=float, default=e.cutoff, help="erp features: FIR low-pass cut-off, Hz "
                   f"(default %(default)s at {e.sfreq:g} Hz)")
    p.add_argument("--erp-taps", type=int, default=e.numtaps, help="erp features: FIR length in samples at "
                   f"{e.sfreq:g} Hz, scaled to the data's rate (default %(default)s)")
    p.add_argument("--erp-decimate", type=int, default=e.decimate, help="erp features: keep every K-th filtered "
                   f"sample at {e.sfreq:g} Hz, scaled to the data's rate (default %(default)s)")
    p.add_argument("--jitter", type=float, default=d.jitter, help="onset-jitter augmentation, seconds each side "
                   "(erp features; default %(default)s: off)")


def add_embedding_args(p: argparse.ArgumentParser) -> None:
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


def add_preprocessing_args(p: argparse.ArgumentParser) -> None:
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


# options that are not TrainConfig fields but shape one (train_config_from's keywords)
_SHAPING = ("crop", "spectrogram_mode", "log_spectrogram", "fmax", "nperseg", "erp_cutoff", "erp_taps",
            "erp_decimate", "no_kd")


def train_config_from(student: str = TrainConfig.student, crop: tuple[int, int] | None = None,
                      spectrogram_mode: str | None = None, log_spectrogram: bool = False, fmax: float | None = None,
                      nperseg: int | None = None, erp_cutoff: float | None = None, erp_taps: int | None = None,
                      erp_decimate: int | None = None, no_kd: bool = False, **fields) -> TrainConfig:
    """A :class:`TrainConfig` from explicit values: ``fields`` are its own fields (``epochs``, ``lr``, ...);
    the rest shape its window, spectrogram (the student's mode and fmax unless given) and erp parts. KD is
    on unless ``no_kd`` or the objective is the embedding one."""
    d, spec = TrainConfig(), student_spec(student)
    crop = crop or (d.crop_start, d.crop_stop)
    mode = spectrogram_mode or ("log" if log_spectrogram else spec.mode or d.spectrogram.mode)
    objective = fields.pop("objective", d.objective)
    erp = ErpConfig(cutoff=d.erp.cutoff if erp_cutoff is None else erp_cutoff,
                    numtaps=d.erp.numtaps if erp_taps is None else erp_taps,
                    decimate=d.erp.decimate if erp_decimate is None else erp_decimate)
    return TrainConfig(student=student, objective=objective, kd=not no_kd and objective == "classes",
                       crop_start=crop[0], crop_stop=crop[1], erp=erp,
                       spectrogram=SpectrogramConfig(nperseg=nperseg or d.spectrogram.nperseg, mode=mode,
                                                     fmax=fmax if fmax is not None else spec.fmax), **fields)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """:func:`train_config_from` of the options a command has (those it lacks keep their defaults)."""
    keys = set(TrainConfig.__dataclass_fields__) | set(_SHAPING)
    return train_config_from(**{k: v for k, v in vars(args).items() if k in keys})


def fitted_config(args: argparse.Namespace, trials: Trials) -> TrainConfig:
    """The training config at the data's rate (window and STFT segment in seconds, see ``for_data``)."""
    from offline_training.experiments.pipeline import for_data

    return for_data(train_config(args), trials, window=args.window, segment=args.segment,
                    crop_given=args.crop is not None, nperseg_given=args.nperseg is not None)


def preprocessing_of(args: argparse.Namespace):
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


def load(spec, preprocessing=None, asr=None) -> LoadedData:
    """The trials of ``spec`` (summary printed) and the phantom that made them, if one did (built once);
    ``asr``: an ASR cutoff to calibrate, or a run's :class:`~bci_stream.contract.artifacts.AsrState`."""
    data = load_data(spec, preprocessing=preprocessing, asr=asr)
    print(data.trials.summary())
    return data


def is_phantom(spec) -> bool:
    """Whether the data SPEC names the phantom (its kind only: the spec is parsed once, when it loads)."""
    specs = split_specs(spec)
    return len(specs) == 1 and specs[0].strip().lower().startswith("phantom")


def class_oracle(data: LoadedData):
    """The phantom's class oracle when the data is one phantom spec, else None."""
    return None if data.phantom is None else data.phantom.oracle_probabilities


def retrieval_oracle(data: LoadedData):
    """The semantic phantom's retrieval oracle, else None."""
    phantom = data.phantom
    return phantom.retrieval_oracle if phantom is not None and phantom.config.semantic else None


def check_embeddings_source(spec, cache: str | None) -> None:
    """Before the data loads: the embedding objective needs a cache or the (semantic) phantom."""
    if not cache and not is_phantom(spec):
        raise ValueError(_NEEDS_EMBEDDINGS)


def image_embeddings(data: LoadedData, cache: str | None):
    """The image embeddings of the embedding objective: ``--embeddings CACHE``, or the semantic phantom's own."""
    from offline_training.training.image_embeddings import from_phantom, load_image_embeddings

    if cache:
        return load_image_embeddings(cache)
    if data.phantom is not None and data.phantom.config.semantic:
        return from_phantom(data.phantom)
    raise ValueError(_NEEDS_EMBEDDINGS)


_NEEDS_EMBEDDINGS = ("the embedding objective needs image embeddings: pass --embeddings CACHE (from `bci-train "
                     "embed-images`), or train on the semantic phantom (phantom:...,semantic=1)")


def print_metrics(metrics: dict) -> None:
    """One line: the test split's top-1 with its CI and p-value, top-3/5, ROC AUC for two classes, the oracle."""
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

