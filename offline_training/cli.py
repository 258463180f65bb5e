"""``bci-train``: teacher soft labels, fit, evaluate, export, or all of it in one ``run``.

One module per command in :mod:`offline_training.commands`; here the parser assembly, the global options
and the error policy (one line per error, never a traceback unless ``-v``), as ``bci-stream``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from offline_training.commands._common import DATA_SPECS, TEACHER_DEFAULTS  # noqa: F401 - TEACHER_DEFAULTS: tested here


def build_parser() -> argparse.ArgumentParser:
    from bci_stream import __version__
    from bci_stream.commands._common import HelpFormatter
    from offline_training.commands import COMMANDS

    parser = argparse.ArgumentParser(prog="bci-train", description=__doc__.split("\n\n")[0], epilog=DATA_SPECS,
                                     formatter_class=HelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more; print tracebacks of errors")
    parser.add_argument("--version", action="version", version=f"bci-train (bci-stream {__version__})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``bci-train``: the error policy of :mod:`bci_stream.errors`, as ``bci-stream`` (one line
    ``bci-train <command>: error: ...``, exit 2 for user errors; ``-v`` adds the traceback)."""
    from bci_stream.errors import run_reporting_errors

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_reporting_errors("bci-train", args.command, args.verbose, lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
