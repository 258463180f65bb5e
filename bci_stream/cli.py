"""bci-stream: simulate a headset, replay a recording, decode live, list streams, inspect a model.

One module per command in :mod:`bci_stream.commands`; here the global options, the version and the
error policy (one line per error, never a traceback unless ``-v``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from bci_stream import __version__
from bci_stream._env import set_offline_environment
from bci_stream.commands._common import HelpFormatter
from bci_stream.errors import run_reporting_errors

log = logging.getLogger("bci_stream")

EPILOG = """a session on one machine:
  bci-stream --local --lsl-session demo simulate --counter &
  bci-stream --local --lsl-session demo live --model demo --mode event

`bci-stream COMMAND --help` shows each command's options and examples.
"""


def global_options(suppress: bool) -> argparse.ArgumentParser:
    """-v, --local, --lsl-session: accepted before or after the command (``suppress``: the copy on each
    command, which sets them only when given there)."""
    p = argparse.ArgumentParser(add_help=False)
    default = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    p.add_argument("-v", "--verbose", action="store_true", default=default(False),
                   help="log progress; print tracebacks of errors")
    p.add_argument("--local", action="store_true", default=default(False),
                   help="keep LSL discovery on this machine, in an LSL session of this run's own (printed; "
                        "another terminal joins it with --lsl-session)")
    p.add_argument("--lsl-session", default=default(None), metavar="NAME",
                   help="LSL session id on this machine (implies --local): several bci-stream commands see each other")
    return p


def build_parser() -> argparse.ArgumentParser:
    from bci_stream.commands import COMMANDS

    parser = argparse.ArgumentParser(prog="bci-stream", description=__doc__.split("\n\n")[0],
                                     parents=[global_options(suppress=False)], formatter_class=HelpFormatter,
                                     epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"bci-stream {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub, parents=[global_options(suppress=True)])
    return parser


def _keep_lsl_local(session: str | None) -> None:
    """``--local``: loopback discovery in a session of this run's own, or ``session``; a process
    started by another bci-stream command (``LSLAPICFG`` already set) stays in that one's session."""
    from bci_stream.lsl.config import session_of, use_loopback

    inherited = os.environ.get("LSLAPICFG")
    if session is None and inherited and session_of(inherited):
        return
    path = use_loopback(session=session)
    if session is None:
        print(f"LSL: this machine only, session {session_of(path)!r} (other commands join it with "
              f"`--local --lsl-session {session_of(path)}`)", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """The ``bci-stream`` command; errors follow :mod:`bci_stream.errors` (one line, ``-v`` for the
    traceback; a JSONL log that could not be written exits 3)."""
    set_offline_environment()  # before anything imports huggingface_hub: no network at run time
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def work() -> int:
        if args.local or args.lsl_session:
            _keep_lsl_local(args.lsl_session)
        if args.command == "live":  # a decoder: it finds a returning stream fastest (over our loopback config)
            from bci_stream.lsl.config import fast_resolve_in_this_process

            fast_resolve_in_this_process()
        return args.func(args)

    return run_reporting_errors("bci-stream", args.command, args.verbose, work)


if __name__ == "__main__":
    sys.exit(main())
