"""bci-stream: real-time visual decoding from EEG (LSL in, distilled spectrogram CNN, pictures out)."""

__version__ = "0.1.0"
