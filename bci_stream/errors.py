"""One error policy for both command lines (``bci-stream``, ``bci-train``): a user error is one line
``<prog> <command>: error: ...`` with exit code 2, anything unexpected one line with exit code 1 and a
hint; ``-v`` adds the traceback. Never a traceback otherwise."""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Callable

EXIT_USAGE = 2  # a user error: bad file, model, stream, data or option (argparse uses 2 too)
EXIT_INTERNAL = 1  # an error the program did not expect (a bug, or a file odd in a way nobody foresaw)
USER_ERRORS = (ValueError, RuntimeError, OSError, MemoryError)  # bad files, models, streams, paths, full disks


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


def one_line_warnings(prog: str, verbose: bool = False) -> None:
    """Python warnings (numpy's, torch's, pyxdf's ``UserWarning``s...) as one line each on stderr,
    ``<prog>: warning: <message>``, each message once; ``verbose`` adds the category and where it was
    raised. (Python's own format is two lines with a source path and the source line.)"""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        if text in seen:
            return
        seen.add(text)
        where = f" ({category.__name__} at {filename}:{lineno})" if verbose else ""
        try:
            print(f"{prog}: warning: {text[:300]}{where}", file=sys.stderr if file is None else file, flush=True)
        except (OSError, ValueError):  # a closed stderr: nowhere to say it
            pass

    warnings.showwarning = show


def run_reporting_errors(prog: str, command: str, verbose: bool, work: Callable[[], int | None]) -> int:
    """``work()``'s exit code (None counts as 0), or the error policy's when it raises. Warnings are
    one line each meanwhile (:func:`one_line_warnings`)."""
    previous = warnings.showwarning
    one_line_warnings(prog, verbose)
    try:
        return work() or 0
    except KeyboardInterrupt:
        return 130
    except USER_ERRORS as err:
        _report(prog, command, verbose, err, hint=False)
        return EXIT_USAGE
    except Exception as err:  # noqa: BLE001 - anything else still gets one line, and -v its traceback
        _report(prog, command, verbose, err, hint=True)
        return EXIT_INTERNAL
    finally:
        warnings.showwarning = previous  # main() called in-process (tests) leaves the caller's as it was


def _report(prog: str, command: str, verbose: bool, err: BaseException, hint: bool) -> None:
    if verbose:
        traceback.print_exception(err)
    more = "" if verbose or not hint else f" (run `{prog} -v ...` for the traceback)"
    print(f"{prog} {command}: error: {error_line(err)}{more}", file=sys.stderr)
