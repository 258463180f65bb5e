"""The viewer's process: the Qt window here, the live session in a child process (Qt-free)."""

from __future__ import annotations

import signal

from bci_stream.live.session import LiveSpec
from bci_stream.viewer.decoding_process import DecodingProcess


def run_viewer_with_decoding_process(spec: LiveSpec, screenshot: str | None = None) -> dict | None:
    """Decode in a child process and show the viewer here until it is closed or the session ends;
    returns the session summary."""
    from PyQt6 import QtWidgets

    from bci_stream.viewer.main_window import MainWindow, show_until_done

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    decoding = DecodingProcess(spec)
    window = MainWindow(decoding.state, decoding.card.ch_names, decoding.card.sfreq, traces=decoding.traces,
                        session=decoding, renderer_factory=decoding.switch_renderer,
                        class_ids=list(decoding.class_ids), card=decoding.card, gallery=decoding.gallery)
    signal.signal(signal.SIGINT, lambda *_: window.close())  # Ctrl+C: close the window, stop the session
    show_until_done(app, window, lambda: decoding.running, spec.seconds, screenshot)
    decoding.stop()
    return decoding.join()
