"""PyQt6 + pyqtgraph live viewer; it only reads shared state, on a QTimer."""

from bci_stream.viewer.main_window import MainWindow, run_viewer

__all__ = ["MainWindow", "run_viewer"]
