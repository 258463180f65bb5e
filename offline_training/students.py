"""Students and baselines. Models know nothing about files or training loops (braindecode style)."""

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


class EEGLSTM(nn.Module):
    """LSTM on raw EEG (Spampinato et al. 2017's encoder + a linear classifier).

    Parameters
    ----------
    n_chans : input channels.
    n_outputs : classes.
    hidden : LSTM units.
    decimate : keep every ``decimate``-th sample (4: 1 kHz → 250 Hz) to make CPU training feasible.
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


STUDENTS = {"cnn": SpectrogramCNN, "lstm": EEGLSTM}


def build_student(name: str, **kwargs) -> nn.Module:
    """A student by name ("cnn" or "lstm") with its constructor arguments."""
    if name not in STUDENTS:
        raise ValueError(f"unknown student {name!r}; choose from {sorted(STUDENTS)}")
    return STUDENTS[name](**kwargs)


def build_from_card_architecture(architecture: dict) -> nn.Module:
    """An untrained student shaped like the one a model card describes (its ``architecture`` entry:
    the student name plus its constructor arguments; training settings in it are ignored)."""
    cls = STUDENTS[architecture.get("student", "cnn")]
    names = cls.__init__.__code__.co_varnames[1 : cls.__init__.__code__.co_argcount]
    return cls(**{k: v for k, v in architecture.items() if k in names})
