"""Ctrl-C while the command's modules load (brandlens_cli's own SIGINT handler)."""

from __future__ import annotations

import subprocess  # nosec B404 - the test runs this interpreter on a fixed script
import sys
import textwrap

# A SIGINT that lands inside a class body's __set_name__ (as while rich.progress or a
# dataclass module loads): Python 3.11 turns whatever the handler raises there into a
# RuntimeError, and library code that catches broad exceptions around an import then
# carries on. Seen in the suite: `brandlens analyze`, interrupted while importing, went
# on to follow its job for a minute instead of exiting.
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    sys.argv = ["brandlens"]  # as the installed command: the handler is installed
    import brandlens_cli

    class Field:
        def __set_name__(self, owner, name):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):  # the handler runs at the next bytecode boundary
                pass

    try:
        class Task:
            fields = Field()
    except Exception:  # what some libraries do around optional imports
        pass
    print("carried on after Ctrl-C")
    """
)


def test_ctrl_c_during_imports_exits_130_whatever_the_code_around_it_catches() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 130, (proc.returncode, proc.stdout, proc.stderr)
    assert "carried on" not in proc.stdout
    assert proc.stderr.strip() == "interrupted", proc.stderr
