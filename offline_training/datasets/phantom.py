"""The phantom headset as a dataset: its spec options (see :mod:`bci_stream.sources.phantom`); the loader
builds the phantom once and keeps it beside its trials (:func:`offline_training.datasets.load_data`)."""

from __future__ import annotations

from bci_stream.sources.phantom import PhantomConfig

_KEYS = {"subjects": "n_subjects", "classes": "n_classes", "channels": "n_channels", "images": "images_per_class",
         "seed": "seed", "snr": "snr", "sfreq": "sfreq"}


def _parse_bool(key: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("1", "0", "true", "false", "yes", "no"):
        raise ValueError(f"phantom option {key}={value!r}: use 1 or 0")
    return text in ("1", "true", "yes")


def phantom_config(**options) -> PhantomConfig:
    """PhantomConfig from spec options (``subjects``, ``classes``, ``channels``, ``images``, ``seed``,
    ``snr``, ``sfreq``, ``semantic`` (1/0), or any :class:`PhantomConfig` field name, e.g. ``embed_dim``)."""
    from offline_training.datasets.options import unknown_key_message

    fields = PhantomConfig.__dataclass_fields__
    kwargs = {}
    for key, value in options.items():
        name = _KEYS.get(key, key)
        if name not in fields:
            known = set(_KEYS) | (set(fields) - set(_KEYS.values()))
            raise ValueError(unknown_key_message(key, known, noun="phantom option"))
        kwargs[name] = _parse_bool(key, value) if isinstance(fields[name].default, bool) \
            else type(fields[name].default)(value)
    return PhantomConfig(**kwargs)
