"""Readers for recorded EEG: XDF, anything MNE reads, and ImageNet-EEG ``.pth`` files."""

from bci_stream.io.read import read_recording
from bci_stream.io.recording import Recording, RecordingError

__all__ = ["Recording", "RecordingError", "read_recording"]
