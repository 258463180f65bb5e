"""The seed's student: a compact CNN over STFT magnitudes (Ferrante et al. 2023's recipe; ``--student seed``,
formerly ``cnn``). Reproduces the paper's Table 1; rectifies before any spatial or temporal integration."""

from __future__ import annotations

import torch
from torch import nn


class SpectrogramCNN(nn.Module):
    """Compact 2-D CNN over STFT magnitudes (the KD student, and the plain-CNN baseline).

    A 1x1 convolution first mixes the EEG channels into ``n_spatial`` virtual channels (a learned
    spatial filter, as EEGNet's depthwise stage), then two 3x3 blocks over (frequency, frame).

    Parameters
    ----------
    n_chans, n_freqs, n_frames : input shape per example.
    n_outputs : classes.
    n_spatial, width : feature maps of the spatial and convolutional stages.
    dropout : before the classifier.
    """

    def __init__(self, n_chans: int, n_freqs: int, n_frames: int, n_outputs: int,
                 n_spatial: int = 32, width: int = 64, dropout: float = 0.3):
        super().__init__()
        self.n_chans, self.n_freqs, self.n_frames, self.n_outputs = n_chans, n_freqs, n_frames, n_outputs
        self.features = nn.Sequential(
            nn.Conv2d(n_chans, n_spatial, 1, bias=False), nn.BatchNorm2d(n_spatial), nn.ELU(),
            nn.Conv2d(n_spatial, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ELU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ELU(),
            nn.AdaptiveAvgPool2d((2, 2)),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * width, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_chans, n_freqs, n_frames)`` normalised spectrograms → ``(batch, n_outputs)`` logits."""
        return self.classifier(self.features(x))
