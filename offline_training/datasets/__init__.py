"""Dataset loaders; every one returns :class:`bci_stream.contract.trials.Trials`.

A data SPEC names a loader and its arguments, e.g. ``phantom:subjects=6,classes=40,seed=0``,
``eegimagenet:/data/eeg_5_95_std.pth,splits=/data/block_splits_by_image_all.pth``,
``xdf:/data/sub-01.xdf,tmin=0,tmax=0.5,mapping=classes.tsv``, ``mne:/data/sub-*/run*.fif,classes=auto``,
``csv:/data/N170/subject1,event_id=1:house;2:face,tmin=-0.1,tmax=0.6`` (Muse / eeg-notebooks CSV),
``mne:/data/ssvep_exo,event_id=1:rest;2:13Hz;3:21Hz;4:17Hz,tmin=1,tmax=4`` (FIF + ``-eve.fif``
sidecars), ``bids:/data/bids,task=images``, ``things:/data/sub-01``. A path that exists is taken
literally (see :func:`parse_spec`). Several specs load as one set of trials (their class sets
merged by class id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from bci_stream.contract.trials import Trials
from bci_stream.io import Recording, RecordingError

if TYPE_CHECKING:
    from bci_stream.sources.phantom import Phantom

KINDS = ("phantom", "eegimagenet", "xdf", "mne", "csv", "bids", "things")
_RECORDING_KINDS = ("xdf", "mne", "csv", "fif", "edf", "bdf", "vhdr", "set", "recording")
SPEC_SEPARATOR = " + "  # several specs in one ``Trials.source``


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, str]]:
    """``"kind:PATH,key=value,..."`` → (kind, path or None, options).

    The path is the longest prefix of ``PATH,key=value,...`` (cut at a ``,``) that exists as a file
    or folder, taken whole: a file named ``record-[2012.07.06-19.02.16]_raw.fif`` or a folder
    ``run=1,a;b`` opens as itself. When none exists, the first item without ``=`` is the path (a glob
    such as ``/data/sub-*/*.fif``, or ``;``-separated files). A path that exists is never globbed;
    ``glob=PATTERN`` picks files under a folder path (:mod:`bci_stream.io.paths`).
    """
    kind, colon, rest = spec.partition(":")
    if not colon and kind.strip().lower() not in KINDS:
        raise ValueError(f"data spec {spec!r} has no kind; write KIND:PATH with KIND one of {', '.join(KINDS)}")
    from bci_stream.io.paths import split_path_options

    try:
        path, options = split_path_options(rest)
    except RecordingError as err:
        raise ValueError(str(err)) from None
    return kind.strip().lower(), path, options


def split_specs(spec: str | Sequence[str]) -> list[str]:
    """One spec, a list of them, or a ``Trials.source`` joining several."""
    specs = [spec] if isinstance(spec, str) else list(spec)
    return [s for item in specs for s in item.split(SPEC_SEPARATOR) if s.strip()]


@dataclass
class LoadedData:
    """Trials loaded from data SPECs, and the phantom that made them when the data is one phantom spec
    (its oracle, teacher and semantic embeddings then come from the same object: built once)."""

    trials: Trials
    phantom: Phantom | None = None


def load_data(spec: str | Sequence[str], progress: bool = True, preprocessing=None, asr=None) -> LoadedData:
    """:func:`load_trials`, keeping the phantom of a single phantom spec (each spec parsed once)."""
    specs = split_specs(spec)
    if not specs:
        raise ValueError("no data spec given")
    if asr is not None and len(specs) > 1:
        raise ValueError("--asr calibrates on one data spec; join the recordings in one spec (a folder or a glob)")
    artifacts: dict = {}
    parts, phantoms = [], []
    for one in specs:
        trials, phantom = _load(one, progress, preprocessing, None if asr is None else (asr, artifacts))
        trials.source = one
        parts.append(trials)
        phantoms.append(phantom)
    trials = parts[0] if len(parts) == 1 else concat_trials(parts)
    if preprocessing is not None:
        trials.preprocessing = preprocessing.to_dict()
    trials.artifacts = artifacts
    # after the filters, which carry a NaN on to later samples
    return LoadedData(trials.without_non_finite(), phantoms[0] if len(specs) == 1 else None)


def load_trials(spec: str | Sequence[str], progress: bool = True, preprocessing=None, asr=None) -> Trials:
    """Load trials from one or several data SPECs (see module docstring); ``trials.source`` is the
    SPEC itself (several joined by :data:`SPEC_SEPARATOR`), so a run folder can reload exactly the same data.

    ``preprocessing`` (a :class:`bci_stream.contract.preprocessing.Preprocessing`, optional) is applied as the live
    decoder applies it: to each continuous recording from its first sample, before epoching
    (recordings, BIDS); to each trial from its first sample for trial-only datasets (phantom,
    ImageNet-EEG, THINGS-EEG2). What was applied is recorded in ``trials.preprocessing``.

    ``asr`` (continuous recordings only, after ``preprocessing``, which must high-pass): a cutoff in
    standard deviations calibrates ASR on all the recordings of the spec (meegkit picks their clean
    windows; labels are not used), or an :class:`~bci_stream.contract.artifacts.AsrState` (a run's,
    to re-test it) is applied as it is; each recording then goes through it from its first sample
    (:func:`~bci_stream.contract.artifacts.asr_continuous`). The state is in ``trials.artifacts``.

    Trials holding a NaN or an infinite sample are left out and counted in ``trials.dropped``
    (:meth:`~bci_stream.contract.trials.Trials.without_non_finite`).
    """
    return load_data(spec, progress, preprocessing, asr).trials


def _load(spec: str, progress: bool, preprocessing, asr=None) -> tuple[Trials, Phantom | None]:
    """One spec's trials (and its phantom, for a phantom spec); ``asr``: ``(cutoff or state, into)``."""
    from offline_training.datasets.options import check_keys, naming_keys, reader_keys

    kind, path, opts = parse_spec(spec)
    if asr is not None and kind not in _RECORDING_KINDS:
        raise ValueError(f"--asr needs continuous recordings ({', '.join(sorted(_RECORDING_KINDS))} specs); "
                         f"{kind}: data are epochs")
    with naming_keys(spec, opts):  # a value that is not a number, a key a reader does not take: named
        if kind == "phantom":
            from bci_stream.sources.phantom import Phantom
            from offline_training.datasets.phantom import phantom_config

            phantom = Phantom(phantom_config(**opts))
            return _epochwise(phantom.trials(progress=progress), preprocessing), phantom
        return _load_kind(spec, kind, path, opts, progress, preprocessing, check_keys, reader_keys, asr), None


def _asr_postprocess(asr, preprocessing, into: dict):
    """Recordings (already through ``preprocessing``) → the same through ASR (:func:`load_trials`)."""
    from bci_stream.contract.artifacts import AsrState, asr_continuous, calibrate_asr, needs_highpass
    from bci_stream.contract.preprocessing import Preprocessing

    needs_highpass(preprocessing or Preprocessing())

    def apply(recordings: list[Recording]) -> list[Recording]:
        names = list(recordings[0].ch_names)
        recordings = [r if list(r.ch_names) == names else
                      replace(r, data=r.data[[r.ch_names.index(c) for c in names]], ch_names=names) for r in recordings]
        state = asr if isinstance(asr, AsrState) else calibrate_asr([r.data for r in recordings], names,
                                                                     recordings[0].sfreq, float(asr))
        state.check(names, recordings[0].sfreq)
        into["asr"] = state.to_dict()
        return [replace(r, data=asr_continuous(state, r.data)) for r in recordings]

    return apply


def _load_kind(spec, kind, path, opts, progress, preprocessing, check_keys, reader_keys, asr=None) -> Trials:
    """The loader of ``kind``, its options checked against its signature first (``check_keys``)."""
    continuous = _continuous_preprocess(preprocessing) if preprocessing is not None else None
    if path is None and not (kind in _RECORDING_KINDS and "glob" in opts):
        raise ValueError(f"data spec {spec!r} needs a path, e.g. {kind}:/data/file")
    if kind == "eegimagenet":
        from offline_training.datasets.eegimagenet import load_eegimagenet_trials

        check_keys(spec, load_eegimagenet_trials, opts)
        return _epochwise(load_eegimagenet_trials(path, **opts), preprocessing)
    if kind in _RECORDING_KINDS:
        from offline_training.datasets.recordings import load_recording_trials

        check_keys(spec, load_recording_trials, opts, more=reader_keys)  # the rest goes to the file's reader
        post = None if asr is None else _asr_postprocess(asr[0], preprocessing, asr[1])
        return load_recording_trials(path, preprocess=continuous, postprocess=post, **opts)
    if kind == "bids":
        from offline_training.datasets.bids import load_bids

        check_keys(spec, load_bids, opts)
        return load_bids(path, preprocess=continuous, **opts)
    if kind == "things":
        from offline_training.datasets.things_eeg2 import load_things_eeg2

        check_keys(spec, load_things_eeg2, opts)
        return _epochwise(load_things_eeg2(path, **opts), preprocessing)
    raise ValueError(f"unknown data kind {kind!r} in {spec!r}; use one of {', '.join(KINDS)}")


def _continuous_preprocess(preprocessing):
    """A recording → recording function applying ``preprocessing`` from the first sample (the live path's
    state at the start of a stream), decimation moving each marker to its output sample."""
    from bci_stream.contract.preprocessing import preprocess_continuous

    def apply(rec: Recording) -> Recording:
        data = preprocess_continuous(preprocessing, rec.data, rec.ch_names, rec.sfreq)
        k = preprocessing.decimate  # output sample j is input sample j * k: a marker goes to the nearest kept one
        events = [(int(np.floor(s / k + 0.5)), t) for s, t in rec.events if int(np.floor(s / k + 0.5)) < data.shape[1]]
        return Recording(data=data, sfreq=rec.sfreq / k, ch_names=list(rec.ch_names), events=events,
                         unit=rec.unit, source=rec.source)

    return apply


def _epochwise(trials: Trials, preprocessing) -> Trials:
    """``preprocessing`` on each trial from its first sample (datasets that hold trials only)."""
    if preprocessing is None:
        return trials
    from bci_stream.contract.preprocessing import preprocess_epochs

    eeg = preprocess_epochs(preprocessing, trials.eeg, list(trials.ch_names), trials.sfreq)
    return replace(trials, eeg=eeg, sfreq=trials.sfreq / preprocessing.decimate)


def concat_trials(parts: Sequence[Trials]) -> Trials:
    """Stack trials of several specs: same rate, channels (reordered by name) and trial length; classes
    merged by id (labels remapped); runs kept distinct per spec; splits dropped."""
    first = parts[0]
    ids, names = list(first.class_ids), list(first.class_names)
    for t in parts[1:]:
        for cid, cname in zip(t.class_ids, t.class_names):
            if cid not in ids:
                ids.append(cid)
                names.append(cname)
    eeg, labels, runs, run_offset = [], [], [], 0
    for t in parts:
        if t.sfreq != first.sfreq or sorted(t.ch_names) != sorted(first.ch_names):
            raise RecordingError(f"{t.source} ({t.sfreq:g} Hz, {len(t.ch_names)} ch) does not match {first.source} "
                                 f"({first.sfreq:g} Hz, {len(first.ch_names)} ch); train on them separately")
        if t.unit != first.unit:
            raise RecordingError(f"{t.source} is in {t.unit} but {first.source} in {first.unit}; train on them separately")
        if t.eeg.shape[-1] != first.eeg.shape[-1] or t.tmin != first.tmin:
            raise RecordingError(f"{t.source}: trials of {t.eeg.shape[-1]} samples from {t.tmin:g} s, but "
                                 f"{first.source}: {first.eeg.shape[-1]} from {first.tmin:g} s; give both the same tmin/tmax")
        order = [t.ch_names.index(c) for c in first.ch_names]
        eeg.append(t.eeg[:, order])
        labels.append(np.array([ids.index(t.class_ids[k]) for k in t.labels], dtype=np.int64))
        runs.append(t.runs - t.runs.min() + run_offset if len(t) else t.runs)
        run_offset = int(runs[-1].max()) + 1 if len(t) else run_offset
    dropped: dict[str, int] = {}
    for t in parts:
        for reason, n in t.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + n
    same_classes = all(list(t.class_ids) == ids for t in parts)
    soft = np.concatenate([t.soft_labels for t in parts]) \
        if same_classes and all(t.soft_labels is not None for t in parts) else None
    return Trials(eeg=np.concatenate(eeg), labels=np.concatenate(labels),
                  image_ids=np.concatenate([t.image_ids for t in parts]),
                  subjects=np.concatenate([t.subjects for t in parts]), runs=np.concatenate(runs),
                  sessions=np.concatenate([t.sessions for t in parts]), sfreq=first.sfreq,
                  ch_names=list(first.ch_names), class_ids=ids, class_names=names, tmin=first.tmin,
                  source=SPEC_SEPARATOR.join(t.source for t in parts), soft_labels=soft, dropped=dropped,
                  unit=first.unit)
