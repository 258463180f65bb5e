"""The phantom headset as a dataset (see :mod:`bci_stream.phantom`)."""

from __future__ import annotations

from bci_stream.phantom import Phantom, PhantomConfig
from bci_stream.trials import Trials

_KEYS = {"subjects": "n_subjects", "classes": "n_classes", "channels": "n_channels", "images": "images_per_class",
         "seed": "seed", "snr": "snr", "sfreq": "sfreq"}


def phantom_config(**options) -> PhantomConfig:
    """PhantomConfig from spec options (``subjects``, ``classes``, ``channels``, ``images``, ``seed``,
    ``snr``, ``sfreq``, or any :class:`PhantomConfig` field name)."""
    fields = PhantomConfig.__dataclass_fields__
    kwargs = {}
    for key, value in options.items():
        name = _KEYS.get(key, key)
        if name not in fields:
            raise ValueError(f"unknown phantom option {key!r}; known: {sorted(_KEYS)}")
        kwargs[name] = type(fields[name].default)(value)
    return PhantomConfig(**kwargs)


def load_phantom(progress: bool = True, **options) -> Trials:
    """All phantom trials with the class-similarity soft labels and the by-image split attached."""
    return Phantom(phantom_config(**options)).trials(progress=progress)
