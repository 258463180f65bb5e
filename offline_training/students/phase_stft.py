"""Phase-aware STFT student: ShallowNet's order (linear spatial filter, linear temporal filter, then
square, pool and log) on the complex STFT, so that the class signal is integrated over channels and
frames *before* anything is rectified.

On the phantom the class signal sits in the lowest bins with a per-coefficient class-SNR below 0.2;
the seed's ``|stft|`` per channel, bin and frame throws it away. A spatial filter applied to the complex
STFT is the STFT of the spatially filtered signal (the STFT is linear), and a complex temporal filter over
frames is a matched filter whose magnitude tolerates latency shifts (a shift rotates the phase).
"""

from __future__ import annotations

import torch
from torch import nn


class PhaseSTFTNet(nn.Module):
    """Complex spatial filter → complex temporal filter → ``|·|²`` → mean pool → log → linear.

    Parameters
    ----------
    n_chans : EEG channels.
    n_freqs : feature rows per channel, ``2 * n_bins`` (real parts of the kept bins, then imaginary
        parts: :class:`bci_stream.contract.features.SpectrogramConfig` mode "complex").
    n_frames : STFT frames.
    n_outputs : classes.
    n_spatial : spatial filters per frequency bin (real weights, applied to real and imaginary parts alike).
    n_filters : complex temporal filters over (spatial filter, bin) inputs.
    kernel_frames : temporal filter length, frames (clipped to ``n_frames``).
    pool_frames, pool_stride : mean pooling of the power over frames.
    dropout : before the classifier.
    """

    def __init__(self, n_chans: int, n_freqs: int, n_frames: int, n_outputs: int, n_spatial: int = 16,
                 n_filters: int = 40, kernel_frames: int = 7, pool_frames: int = 5, pool_stride: int = 2,
                 dropout: float = 0.5):
        super().__init__()
        if n_freqs % 2:
            raise ValueError(f"PhaseSTFTNet needs complex features (2 x bins rows); got {n_freqs} rows")
        self.n_chans, self.n_freqs, self.n_frames, self.n_outputs = n_chans, n_freqs, n_frames, n_outputs
        self.n_bins = n_freqs // 2
        kernel_frames = min(kernel_frames, n_frames)
        self.spatial = nn.Parameter(torch.randn(self.n_bins, n_spatial, n_chans) / n_chans**0.5)
        self.temporal_re = nn.Conv1d(self.n_bins * n_spatial, n_filters, kernel_frames, bias=False)
        self.temporal_im = nn.Conv1d(self.n_bins * n_spatial, n_filters, kernel_frames, bias=False)
        n_out = n_frames - kernel_frames + 1
        pool_frames = min(pool_frames, n_out)
        self.pool = nn.AvgPool1d(pool_frames, pool_stride)
        n_pooled = (n_out - pool_frames) // pool_stride + 1
        self.norm = nn.BatchNorm1d(n_filters)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(n_filters * n_pooled, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_chans, 2 * n_bins, n_frames)`` normalised complex STFT → ``(batch, n_outputs)`` logits."""
        re, im = x[:, :, : self.n_bins], x[:, :, self.n_bins :]  # (batch, chans, bins, frames)
        # 1. spatial filter per bin, the same real weights on both parts (it commutes with the STFT)
        re = torch.einsum("bcft,fsc->bfst", re, self.spatial).flatten(1, 2)  # (batch, bins * spatial, frames)
        im = torch.einsum("bcft,fsc->bfst", im, self.spatial).flatten(1, 2)
        # 2. complex temporal filter: (re + i im) * (w_re + i w_im)
        out_re = self.temporal_re(re) - self.temporal_im(im)
        out_im = self.temporal_im(re) + self.temporal_re(im)
        # 3. power, pooled over frames, log (ShallowNet's square -> mean pool -> log)
        power = self.pool(out_re * out_re + out_im * out_im)
        features = self.norm(torch.log(power.clamp_min(1e-6)))
        return self.classifier(features)
