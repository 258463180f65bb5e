"""The stimulus presenter (``bci-stream present``): pictures from a gallery-layout folder in a seeded,
interleaved order, each onset's image id pushed on an LSL marker stream stamped at the frame flip.

:mod:`~bci_stream.present.schedule` (what is shown when; no Qt) and
:mod:`~bci_stream.present.window` (the PyQt6 window that shows it).
"""
