"""Pieces every ``bci-stream`` command uses: signal handling, exit codes, the help formatter."""

from __future__ import annotations

import argparse
import signal
import threading

LINGER_SECONDS = 1.0  # a finished replay keeps its outlets this long: the consumers' last pulls reach them
EXIT_LOG_FAILED = 3  # decoding ran but the JSONL log could not be written in full


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option's help; epilog examples kept as written (both command lines).

    No ``(default: None)``: an option without a default says in its help what happens without it
    (e.g. "default: the card's"); a ``None`` after that would only repeat it, wrongly.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:
            return action.help or ""
        return super()._get_help_string(action)


def stop_on_signals(stop) -> None:
    """Ctrl-C / SIGTERM call ``stop`` (the main thread only: that is where Python runs handlers)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop())
