"""bci-stream: simulate a headset, replay a recording, decode live, list streams, inspect a model.

One module per command in :mod:`bci_stream.commands`; here the global options, the version and the
error policy (one line per error, never a traceback unless ``-v``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from bci_stream import __version__
from bci_stream.commands._common import EXIT_INTERNAL, EXIT_USAGE, HelpFormatter
from bci_stream.offline_env import set_offline_environment

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
    from bci_stream.lsl_config import session_of, use_loopback

    inherited = os.environ.get("LSLAPICFG")
    if session is None and inherited and session_of(inherited):
        return
    path = use_loopback(session=session)
    if session is None:
        print(f"LSL: this machine only, session {session_of(path)!r} (other commands join it with "
              f"`--local --lsl-session {session_of(path)}`)", file=sys.stderr, flush=True)


def error_line(err: BaseException, limit: int = 400) -> str:
    """One line for a user: the error's own message (ours name the problem and the next step); the
    type only where the message alone says too little (``KeyError: 'x'``, a bare ``TypeError``)."""
    if isinstance(err, MemoryError):
        return "out of memory" + (f" ({err})" if str(err) else "") + ": free memory, or use a smaller model or window"
    if isinstance(err, OSError) and err.strerror:  # e.g. "Is a directory: runs/" for --log runs/
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    text = " ".join(str(err).split())
    if not isinstance(err, (ValueError, RuntimeError, OSError)) or not text:
        text = f"{type(err).__name__}: {text}".rstrip(": ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    """The ``bci-stream`` command. Errors never reach the user as a traceback (``-v`` prints it):
    user errors exit 2, unexpected ones 1, a JSONL log that could not be written 3."""
    set_offline_environment()  # before anything imports huggingface_hub: no network at run time
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.local or args.lsl_session:
            _keep_lsl_local(args.lsl_session)
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, RuntimeError, OSError, MemoryError) as err:
        # user errors: bad files, models, streams, paths (IsADirectoryError for --log DIR), a full disk
        _report(args, err, hint=False)
        return EXIT_USAGE
    except Exception as err:  # noqa: BLE001 - anything else still gets one line, and -v its traceback
        _report(args, err, hint=True)
        return EXIT_INTERNAL


def _report(args, err: BaseException, hint: bool) -> None:
    if args.verbose:
        traceback.print_exception(err)
    more = "" if args.verbose or not hint else " (run `bci-stream -v ...` for the traceback)"
    print(f"bci-stream {args.command}: error: {error_line(err)}{more}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
