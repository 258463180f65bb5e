"""The ``bci-stream`` sub-commands, one module each (``add_parser(sub, parents)`` and ``run(args)``)."""

from bci_stream.commands import (
    bridge,
    calibrate,
    index,
    info,
    live,
    present,
    record,
    replay,
    simulate,
    streams,
)

COMMANDS = (simulate, replay, bridge, live, info, streams, index, record, present, calibrate)
