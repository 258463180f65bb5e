"""Dataset loaders; every one returns :class:`bci_stream.trials.Trials`.

A data SPEC names a loader and its arguments, e.g. ``phantom:subjects=6,classes=40,seed=0``,
``eegimagenet:/data/eeg_5_95_std.pth,splits=/data/block_splits_by_image_all.pth``,
``xdf:/data/sub-01.xdf,tmin=0,tmax=0.5``, ``mne:/data/run1.fif``, ``things:/data/sub-01``.
"""

from __future__ import annotations

from bci_stream.trials import Trials


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, str]]:
    """``"kind:PATH,key=value,..."`` → (kind, path or None, options). The first item without ``=`` is the path."""
    kind, _, rest = spec.partition(":")
    path, options = None, {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if eq:
            options[key.strip()] = value.strip()
        elif path is None:
            path = item
        else:
            raise ValueError(f"data spec {spec!r}: more than one path ({path!r}, {item!r})")
    return kind.strip().lower(), path, options


def load_trials(spec: str, progress: bool = True) -> Trials:
    """Load trials from a data SPEC (see module docstring); ``trials.source`` is the SPEC itself, so
    a run folder can reload exactly the same data."""
    trials = _load(spec, progress)
    trials.source = spec
    return trials


def _load(spec: str, progress: bool) -> Trials:
    kind, path, opts = parse_spec(spec)
    if kind == "phantom":
        from offline_training.datasets.phantom import load_phantom

        return load_phantom(progress=progress, **opts)
    if path is None:
        raise ValueError(f"data spec {spec!r} needs a path, e.g. {kind}:/data/file")
    if kind == "eegimagenet":
        from offline_training.datasets.eegimagenet import load_eegimagenet_trials

        return load_eegimagenet_trials(path, **opts)
    if kind in ("xdf", "mne", "fif", "edf", "bdf", "vhdr", "recording"):
        from offline_training.datasets.recordings import load_recording_trials

        return load_recording_trials(path, **opts)
    if kind == "things":
        from offline_training.datasets.things_eeg2 import load_things_eeg2

        return load_things_eeg2(path, **opts)
    raise ValueError(f"unknown data kind {kind!r} in {spec!r}; use phantom, eegimagenet, xdf, mne or things")
