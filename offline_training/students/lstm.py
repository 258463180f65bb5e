"""LSTM on raw EEG (Spampinato et al. 2017): kept so that old run folders load; no longer a baseline
(raw EEG decimated by ``[::4]`` without an anti-aliasing filter sat at chance; the braindecode models on
the ``erp`` features replace it)."""

from __future__ import annotations

import torch
from torch import nn


class EEGLSTM(nn.Module):
    """LSTM on raw EEG + a linear classifier.

    Parameters
    ----------
    n_chans : input channels.
    n_outputs : classes.
    hidden : LSTM units.
    decimate : keep every ``decimate``-th sample.
    """

    def __init__(self, n_chans: int, n_outputs: int, hidden: int = 128, decimate: int = 4):
        super().__init__()
        self.n_chans, self.n_outputs, self.decimate = n_chans, n_outputs, decimate
        self.lstm = nn.LSTM(n_chans, hidden, batch_first=True)
        self.classifier = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_chans, n_times)`` standardised EEG → ``(batch, n_outputs)`` logits."""
        seq = x[..., :: self.decimate].transpose(1, 2)
        _, (h, _) = self.lstm(seq)
        return self.classifier(h[-1])
