"""The ``bci-stream`` sub-commands, one module each (``add_parser(sub, parents)`` and ``run(args)``)."""

from bci_stream.commands import bridge, index, info, live, replay, simulate, streams

COMMANDS = (simulate, replay, bridge, live, info, streams, index)
