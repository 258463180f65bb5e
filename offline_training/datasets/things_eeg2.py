"""THINGS-EEG2 (Gifford et al. 2022) preprocessed files: an interleaved (RSVP) design.

Each ``preprocessed_eeg_{training,test}.npy`` holds a pickled dict (numpy ``allow_pickle``):
``preprocessed_eeg_data`` (images, repetitions, channels, times) at 100 Hz, ``ch_names`` and
``times`` (seconds, from -0.2). Such a file is a pickle; it is read with an unpickler that
only rebuilds numpy arrays and plain containers and refuses every other callable, so a hostile
file fails with a clear error instead of running code.
Classes are the image concepts (``image_concepts`` list or ``concepts.txt`` beside the file, else
"concept_<i>" with ``images_per_concept`` images each, 10 for training).

With ``metadata=`` the release's ``image_metadata.npy`` (``train_img_files``/``test_img_files``,
``train_img_concepts``/``test_img_concepts``, in the EEG files' image order) names each trial's image by its
file stem (e.g. ``aardvark_01b``: the id ``bci-train embed-images`` caches it under) and its concept
(e.g. ``00001_aardvark``); without it image ids are ``<part>_<index>``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from bci_stream.contract.trials import Trials
from bci_stream.io import RecordingError

_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"), ("numpy", "dtype")}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)")


def _load_npy_dict(path: Path, key: str = "preprocessed_eeg_data") -> dict:
    """An ``.npy`` file's content; object arrays go through the arrays-only unpickler."""
    try:
        with path.open("rb") as f:
            version = npformat.read_magic(f)
            reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
            _, _, dtype = reader(f)
            obj = _ArraysOnlyUnpickler(f).load() if dtype.hasobject else np.load(path, allow_pickle=False)
    except pickle.UnpicklingError as err:
        raise RecordingError(f"{path}: refused: {err}") from err
    except Exception as err:
        raise RecordingError(f"{path}: not a readable .npy file ({type(err).__name__}: {err})") from err
    data = obj.item() if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == () else obj
    if not isinstance(data, dict) or key not in data:
        raise RecordingError(f"{path}: not a THINGS-EEG2 {'preprocessed' if key == 'preprocessed_eeg_data' else 'metadata'} "
                             f"file (no {key!r})")
    return data


def image_metadata(path: str | Path, part: str) -> tuple[list[str], list[str]]:
    """``(file stems, concepts)`` of ``part``'s images, in order, from THINGS-EEG2's ``image_metadata.npy``."""
    data = _load_npy_dict(Path(path), key="train_img_files")
    prefix = "train" if part == "training" else "test"
    try:
        files, concepts = data[f"{prefix}_img_files"], data[f"{prefix}_img_concepts"]
    except KeyError as err:
        raise RecordingError(f"{path}: no {err.args[0]!r}; give THINGS-EEG2's image_metadata.npy") from None
    return [Path(str(f)).stem for f in files], [str(c) for c in concepts]


def load_things_eeg2(path: str, part: str = "training", subject: str = "1", images_per_concept: str = "10",
                     average: str = "0", sessions: str = "4", metadata: str | None = None) -> Trials:
    """THINGS-EEG2 trials of one subject.

    Parameters
    ----------
    path : a subject folder holding ``preprocessed_eeg_<part>.npy``, or that file itself.
    part : "training" or "test".
    images_per_concept : consecutive images that share a concept (10 in training, 1 in test).
    average : "1" to average the repetitions of each image (one trial per image).
    metadata : THINGS-EEG2's ``image_metadata.npy``: image ids become the file stems, classes the concepts.
    sessions : recording sessions the repetitions span, in order (THINGS-EEG2: 4; the preprocessed file
        stacks each image's repetitions session by session). ``Trials.sessions`` and ``Trials.runs`` are
        the session of each trial, not the repetition index: a by-block split then holds out sessions, and
        (as every block split does) never trains on an image that is tested.
    """
    p = Path(path)
    file = p if p.is_file() else p / f"preprocessed_eeg_{part}.npy"
    if not file.exists():
        raise RecordingError(f"no THINGS-EEG2 file at {file}")
    data = _load_npy_dict(file)
    x = np.asarray(data["preprocessed_eeg_data"], dtype=np.float32)
    if x.ndim != 4:
        raise RecordingError(f"{file}: preprocessed_eeg_data has shape {x.shape}; expected (images, reps, ch, times)")
    times = np.asarray(data.get("times", np.arange(x.shape[-1]) / 100.0 - 0.2), dtype=float)
    sfreq = float(round(1.0 / np.median(np.diff(times)))) if len(times) > 1 else 100.0
    n_img, n_rep = x.shape[:2]
    per = int(images_per_concept)
    concept = np.arange(n_img) // per
    names_file = file.parent / "concepts.txt"
    stems = None
    if metadata:
        stems, concepts = image_metadata(metadata, part)
        if len(stems) != n_img:
            raise RecordingError(f"{metadata} lists {len(stems)} {part} images but {file} has {n_img}; "
                                 "give the metadata of the same release")
        data = {**data, "image_concepts": concepts}
    if "image_concepts" in data:
        names = [str(c) for c in data["image_concepts"]]
        uniq = list(dict.fromkeys(names))
        concept, class_names = np.array([uniq.index(n) for n in names]), uniq
    elif names_file.exists():
        class_names = names_file.read_text().split()
    else:
        class_names = [f"concept_{i}" for i in range(concept.max() + 1)]
    if average == "1":
        eeg, labels, images = x.mean(1), concept, np.arange(n_img)
    else:
        eeg = x.reshape(n_img * n_rep, *x.shape[2:])
        labels, images = np.repeat(concept, n_rep), np.repeat(np.arange(n_img), n_rep)
    n_sessions = max(1, min(int(sessions), n_rep))
    session_of_rep = np.arange(n_rep) * n_sessions // n_rep
    session = np.zeros(n_img, np.int64) if average == "1" else np.tile(session_of_rep, n_img)
    names = stems if stems is not None else [f"{part}_{i}" for i in range(n_img)]
    return Trials(eeg=eeg, labels=labels, image_ids=np.array([names[i] for i in images]),
                  subjects=np.full(len(labels), int(subject)), runs=session, sessions=session, sfreq=sfreq,
                  ch_names=[str(c) for c in data.get("ch_names", [f"E{i + 1:03d}" for i in range(x.shape[2])])],
                  class_ids=list(class_names), class_names=list(class_names), tmin=float(times[0]),
                  source=f"things:{file}")
