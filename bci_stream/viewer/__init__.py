"""PyQt6 + pyqtgraph live viewer: it only reads a mirror of the decoding process's state, on a QTimer."""

from bci_stream.viewer.main_window import MainWindow

__all__ = ["MainWindow"]
