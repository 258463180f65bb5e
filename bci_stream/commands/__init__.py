"""The ``bci-stream`` sub-commands, one module each (``add_parser(sub, parents)`` and ``run(args)``)."""

from bci_stream.commands import index, info, live, replay, simulate, streams

COMMANDS = (simulate, replay, live, info, streams, index)
