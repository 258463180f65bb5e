"""braindecode's EEG models (taken from the library, not re-typed) as students on the ``erp`` features.

The ``erp`` features are ``(batch, n_chans, 1, n_times)`` (one row per channel, like every feature kind);
:class:`BraindecodeStudent` drops the row axis and calls the braindecode model on
``(batch, n_chans, n_times)``. Kernel and pool lengths are set in seconds and converted at the features'
rate, because braindecode's defaults assume 250 Hz trials of several seconds while ours are ~50 samples
at 125 Hz.
"""

from __future__ import annotations

import torch
from torch import nn

# name -> (braindecode class name, constructor arguments in seconds -> samples, fixed arguments)
_SECONDS = {
    "eegnet": ({"kernel_length": 0.128}, {"pool1_kernel_size": 2, "pool2_kernel_size": 4, "drop_prob": 0.25}),
    "shallow": ({"filter_time_length": 0.072, "pool_time_length": 0.088, "pool_time_stride": 0.024},
                {"drop_prob": 0.5}),
    "deep4": ({}, {"filter_time_length": 5, "pool_time_length": 2, "pool_time_stride": 2, "filter_length_2": 3,
                   "filter_length_3": 3, "filter_length_4": 3, "drop_prob": 0.5}),
}
BRAINDECODE_CLASSES = {"eegnet": "EEGNet", "shallow": "ShallowFBCSPNet", "deep4": "Deep4Net"}


def braindecode_class(name: str) -> type[nn.Module]:
    """The braindecode model class for one of :data:`BRAINDECODE_CLASSES` (imported on demand: braindecode
    takes seconds to import and the live path never needs it)."""
    import warnings

    with warnings.catch_warnings():  # braindecode's import warns about MNE montage names it does not use here
        warnings.simplefilter("ignore")
        import braindecode.models as models
    return getattr(models, BRAINDECODE_CLASSES[name])


class BraindecodeStudent(nn.Module):
    """A braindecode model on ``erp`` features.

    Parameters
    ----------
    model : "eegnet" (EEGNet v4), "shallow" (ShallowFBCSPNet) or "deep4" (Deep4Net).
    n_chans, n_times : input shape per example (``n_times``: decimated ERP samples).
    n_outputs : classes.
    sfreq : rate of the ERP samples, Hz (sets kernel and pool lengths given in seconds).
    n_freqs : rows per channel of the features (must be 1: the erp kind).
    **kwargs : braindecode constructor arguments overriding the defaults here.
    """

    def __init__(self, model: str, n_chans: int, n_times: int, n_outputs: int, sfreq: float, n_freqs: int = 1,
                 **kwargs):
        super().__init__()
        if model not in BRAINDECODE_CLASSES:
            raise ValueError(f"unknown braindecode student {model!r}; choose from {sorted(BRAINDECODE_CLASSES)}")
        if n_freqs != 1:
            raise ValueError(f"braindecode students take erp features (1 row per channel); got {n_freqs} rows")
        seconds, fixed = _SECONDS[model]
        args = {k: max(1, int(round(v * sfreq))) for k, v in seconds.items()}
        args.update(fixed)
        args.update(kwargs)
        self.model_name, self.n_chans, self.n_times, self.n_outputs = model, n_chans, n_times, n_outputs
        self.net = braindecode_class(model)(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times,
                                            final_conv_length="auto", **args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_chans, 1, n_times)`` normalised ERP features → ``(batch, n_outputs)`` logits."""
        return self.net(x[:, :, 0, :])
