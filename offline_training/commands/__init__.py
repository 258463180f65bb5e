"""The ``bci-train`` sub-commands, one module each (``add_parser(sub)`` and ``run(args)``), as
:mod:`bci_stream.commands`; shared options and helpers in :mod:`offline_training.commands._common`."""

from offline_training.commands import embed_images, evaluate, export, fit, run, sweep, teacher, things_eeg2

COMMANDS = (teacher, embed_images, fit, things_eeg2, evaluate, export, run, sweep)
