"""The ``brandlens`` command line.

Run as a command (the ``brandlens`` script, ``python -m brandlens_cli[.main]``), Ctrl-C
exits quietly (status 130, no traceback) from the start, while the command's modules still
load; once a command runs, it handles Ctrl-C itself (``main._run``). Imported as a library
(tests, the benchmarks), nothing changes.
"""

from __future__ import annotations

# The C module: `signal` would first build its enums, time in which Ctrl-C is unhandled.
import _signal  # type: ignore[import-not-found]  # (no stubs; `signal` wraps it)
import os
import sys
from types import FrameType

INTERRUPTED_EXIT_CODE = 130


def exit_on_interrupt(signum: int, frame: FrameType | None) -> None:
    """A SIGINT handler: say so and exit 130 at once, wherever the program is.

    It ends the process (``os._exit``) rather than raising SystemExit: raised from a
    signal handler, an exception lands in whatever code runs at that moment, and during
    imports that can be a class body's ``__set_name__`` (Python turns it into a
    RuntimeError) under library code that catches broad exceptions, after which the
    command carried on. Nothing needs cleaning up here: a command's own work runs under
    ``main._run``, which handles Ctrl-C itself (cancelling, so its cleanup runs).
    """
    for stream, text in ((sys.stdout, ""), (sys.stderr, "interrupted\n")):
        try:
            stream.write(text)
            stream.flush()
        # e.g. a reentrant write (the handler interrupted one): exiting matters more
        except Exception:  # noqa: S110  # nosec B110
            pass
    os._exit(INTERRUPTED_EXIT_CODE)


def _run_as_command() -> bool:
    # while `python -m brandlens_cli…` imports this package, sys.argv[0] is "-m"
    program = sys.argv[0] if sys.argv else ""
    return program == "-m" or os.path.basename(program) == "brandlens"


if _run_as_command() and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, exit_on_interrupt)
