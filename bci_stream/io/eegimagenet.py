"""Spampinato et al. 2017 ImageNet-EEG (PerceiveLab) ``.pth`` files, read safely.

Not to be confused with Zhu et al.'s 2024 "EEG-ImageNet" (16 subjects, 4,000 images), a different data set.
The 2017 set was recorded in class blocks; Li et al. (TPAMI 2020) showed block-design decoders fall to
chance on interleaved designs (see the controls in :mod:`offline_training.experiments.controls`).

A file is a ``torch.save``d dict: ``dataset`` = list of ``{'eeg': float tensor (128, T) at 1 kHz,
'image': int, 'label': int 0-39, 'subject': int 1-6}``, ``labels`` = the 40 synsets and
``images`` = image names such as ``n02389026_3437``. Loaded with ``torch.load(weights_only=True)``
only: a file carrying arbitrary pickled code fails with :class:`RecordingError` and never runs.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bci_stream.io.recording import Recording, RecordingError

SFREQ = 1000.0
N_CHANNELS = 128


def default_channel_names(n: int = N_CHANNELS) -> list[str]:
    """ImageNet-EEG files carry no channel names (a 128-channel actiCAP): ``E001``..``E128``."""
    return [f"E{i + 1:03d}" for i in range(n)]


@dataclass
class EEGImageNetFile:
    """The parsed content of an ImageNet-EEG file.

    Attributes
    ----------
    eeg : list of float32 arrays ``(128, T_i)`` (T varies around 500 samples, 1 kHz).
    labels, images, subjects : int arrays, one per trial.
    synsets : 40 class synsets (label order).
    image_names : image names, indexed by ``images``.
    """

    eeg: list[np.ndarray]
    labels: np.ndarray
    images: np.ndarray
    subjects: np.ndarray
    synsets: list[str]
    image_names: list[str]


def safe_torch_load(path: str | Path):
    """``torch.load(path, weights_only=True)`` with one-line errors: missing, corrupt/unreadable, or
    refused (the file asks to run code while loading; the call it names never runs)."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"no file at {path}")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4 ...": said below, in one line, if it matters
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        from bci_stream.io.pickle_scan import disallowed_globals

        blocked = re.search(r"GLOBAL ([\w.]+)", str(err))
        asked = [blocked.group(1)] if blocked else disallowed_globals(path)  # protocol 4/5: torch names no call
        if asked:  # torch's own advice (re-run with weights_only=False) would run that call: never give it
            raise RecordingError(
                f"{path}: refused to load: it asks to call {', '.join(asked[:3])} while unpickling; it is not a plain "
                "tensor file (bci-stream loads only tensors and plain containers and never runs code from a data file)"
            ) from None
        if "operand 149" in str(err):  # FRAME: a protocol-4/5 pickle of plain tensors, which torch's safe loader lacks
            raise RecordingError(f"{path}: saved with pickle protocol 4 or 5, which torch's safe loader cannot read; "
                                 "re-save it with torch.save(obj, path) (default protocol 2)") from None
        raise RecordingError(f"{path}: corrupt or unreadable torch file ({_first_line(err)})") from None
    except Exception as err:  # truncated zip, empty file, text: not a torch file
        raise RecordingError(
            f"{path}: corrupt or unreadable torch file ({type(err).__name__}: {_first_line(err) or 'empty'})"
        ) from None


def _first_line(err: Exception) -> str:
    """The part of a torch error worth showing: its last informative line, without torch's advice."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [line for line in lines if "weights_only" not in line and "documentation" not in line
              and "file an issue" not in line]
    return (useful or lines or [""])[0][:200]


def load_eegimagenet(path: str | Path) -> EEGImageNetFile:
    """Parse an ImageNet-EEG ``.pth`` file; errors name the missing or malformed part."""
    content = safe_torch_load(path)
    if not isinstance(content, dict) or "dataset" not in content:
        raise RecordingError(f"{path}: not an ImageNet-EEG file (expected a dict with 'dataset', 'labels', 'images')")
    for key in ("dataset", "labels", "images"):
        if key not in content:
            raise RecordingError(f"{path}: ImageNet-EEG file has no {key!r} entry")
        if not isinstance(content[key], (list, tuple)):
            raise RecordingError(f"{path}: ImageNet-EEG {key!r} is a {type(content[key]).__name__}; expected a list")
    eeg, labels, images, subjects = [], [], [], []
    for i, item in enumerate(content["dataset"]):
        try:
            x = item["eeg"].float().numpy()
            labels.append(int(item["label"]))
            images.append(int(item["image"]))
            subjects.append(int(item["subject"]))
        except (KeyError, TypeError, AttributeError, ValueError, RuntimeError) as err:
            raise RecordingError(f"{path}: trial {i} lacks eeg/label/image/subject ({type(err).__name__}: {err})") \
                from None
        if x.ndim != 2:
            raise RecordingError(f"{path}: trial {i} eeg has shape {tuple(x.shape)}; expected (channels, time)")
        eeg.append(x)
    if not eeg:
        raise RecordingError(f"{path}: ImageNet-EEG file holds no trials")
    n_ch = {x.shape[0] for x in eeg}
    if len(n_ch) != 1:
        raise RecordingError(f"{path}: trials have differing channel counts {sorted(n_ch)}")
    return EEGImageNetFile(eeg=eeg, labels=np.array(labels), images=np.array(images), subjects=np.array(subjects),
                           synsets=[str(s) for s in content["labels"]], image_names=[str(s) for s in content["images"]])


def read_eegimagenet_continuous(path: str | Path, subject: int | None = None,
                                ch_names: list[str] | None = None) -> Recording:
    """Trials laid end to end (in file order) as one recording, a marker (the image name) at each onset.

    ``subject``: keep only that subject's trials. The data are as stored (often z-scored: unit "a.u.").
    """
    f = load_eegimagenet(path)
    keep = [i for i in range(len(f.eeg)) if subject is None or f.subjects[i] == subject]
    if not keep:
        raise RecordingError(f"{path}: no trials for subject {subject}")
    ch_names = ch_names or default_channel_names(f.eeg[0].shape[0])
    onsets = np.cumsum([0] + [f.eeg[i].shape[1] for i in keep[:-1]])
    events = [(int(o), f.image_names[f.images[i]] if f.images[i] < len(f.image_names) else f.synsets[f.labels[i]])
              for o, i in zip(onsets, keep)]
    data = np.concatenate([f.eeg[i] for i in keep], axis=1)
    return Recording(data=data, sfreq=SFREQ, ch_names=ch_names, events=events, unit="a.u.", source=str(path))
