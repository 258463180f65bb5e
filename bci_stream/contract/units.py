"""Signal units: read what a stream or file says its samples are in, and convert to a model's unit.

LSL drivers write a channel's unit in ``desc/channels/channel/unit`` as text ("microvolts", "uV",
"µV", "mV", "V"...); mne-lsl writes MNE's ``unit_mul`` exponent instead ("0" for volts, "-6" for
microvolts). Pre-standardised data (ImageNet-EEG's z-scored release) are in arbitrary units,
"a.u.", which match only a model trained on "a.u.".
"""

from __future__ import annotations

VOLTS_PER_UNIT = {
    "v": 1.0, "volt": 1.0, "volts": 1.0,
    "mv": 1e-3, "millivolt": 1e-3, "millivolts": 1e-3,
    "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "microvolt": 1e-6, "microvolts": 1e-6,
    "nv": 1e-9, "nanovolt": 1e-9, "nanovolts": 1e-9,
}
ARBITRARY = "a.u."
_ARBITRARY_ALIASES = {"a.u.", "au", "a.u", "arbitrary", "arbitrary units", "z", "z-score", "zscore", "std"}
UNIT_OPTIONS = "V, mV, uV, nV or a.u."


class UnitError(ValueError):
    """A unit that cannot be read, or cannot be converted to what the model needs."""


def normalise_unit(text: str | None) -> str | None:
    """Canonical form ("V", "mV", "uV", "nV", "a.u.") of a unit string, or None when empty/unknown.

    Accepts mne-lsl's exponent codes ("0", "-3", "-6", "-9").
    """
    if text is None:
        return None
    t = str(text).strip()
    if not t:
        return None
    low = t.lower()
    if low in _ARBITRARY_ALIASES:
        return ARBITRARY
    try:  # mne-lsl: the power of ten of volts, e.g. "-6" for microvolts
        exponent = int(float(low))
    except ValueError:
        volts = VOLTS_PER_UNIT.get(low)
    else:
        volts = 10.0 ** exponent
    for name, factor in (("V", 1.0), ("mV", 1e-3), ("uV", 1e-6), ("nV", 1e-9)):
        if volts is not None and abs(volts - factor) <= 1e-12 * factor:
            return name
    return None


def conversion_factor(found: str | None, wanted: str) -> float:
    """Multiply samples in ``found`` by this to get ``wanted``; :class:`UnitError` if impossible."""
    have, want = normalise_unit(found), normalise_unit(wanted)
    if want is None:
        raise UnitError(f"the model's unit {wanted!r} is not one of {UNIT_OPTIONS}")
    if have is None:
        raise UnitError(f"unit {found!r} is not one of {UNIT_OPTIONS}" if found else "no unit given")
    if have == want:
        return 1.0
    if ARBITRARY in (have, want):
        raise UnitError(f"samples in {have} cannot be converted to {want}")
    return VOLTS_PER_UNIT[have.lower()] / VOLTS_PER_UNIT[want.lower()]


def assume_unit_hint(model_unit: str) -> str:
    """What to do when a stream's unit does not fit a model in ``model_unit``: the ``--assume-unit``
    values that can work (a model in a.u. takes only a.u.: volts never convert to it)."""
    if normalise_unit(model_unit) == ARBITRARY:
        return ("the model was trained on standardised samples (a.u.): pass --assume-unit a.u. if the stream's samples "
                "are standardised as its training data were (V, mV, uV and nV cannot be converted to a.u.)")
    return "pass --assume-unit UNIT (V, mV, uV, nV) if you know what its samples are in"


def stream_unit_requirement(model_unit: str) -> str:
    """The unit a stream must have for a model in ``model_unit``, with what is converted (``info``)."""
    if normalise_unit(model_unit) == ARBITRARY:
        return "a.u. (standardised as the training data were: a stream declaring a.u., or --assume-unit a.u.; " \
               "V/mV/uV/nV streams cannot be converted)"
    return f"{model_unit} (V/mV/uV/nV streams are converted)"
