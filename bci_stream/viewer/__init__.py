"""PyQt6 + pyqtgraph live viewer: it only reads a mirror of the decoding process's state, on a QTimer.

Qt lives in :mod:`bci_stream.viewer.main_window` and :mod:`bci_stream.viewer.app` only; the
decoding process (:mod:`bci_stream.viewer.decoding_process`) imports neither, so importing this
package imports no Qt.
"""
