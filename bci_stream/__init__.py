"""bci-stream: real-time visual decoding from EEG (LSL in, distilled spectrogram CNN, pictures out)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bci-stream")  # one source: pyproject.toml
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
