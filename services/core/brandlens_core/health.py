"""Container health check: ``python -m brandlens_core.health --file F --max-age-seconds N``.

A worker touches its heartbeat file after every poll of its queue (at most
``wait_time_seconds`` apart); the check fails when the file is older than the
allowed age, i.e. the poll loop is stuck or dead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def check(path: Path, max_age_seconds: float) -> tuple[bool, str]:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False, f"unhealthy: {path} does not exist (the worker has not polled yet)"
    if age > max_age_seconds:
        return False, f"unhealthy: last poll {age:.0f}s ago (limit {max_age_seconds:.0f}s)"
    return True, f"healthy: last poll {age:.1f}s ago"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, required=True, help="the worker's heartbeat file")
    parser.add_argument("--max-age-seconds", type=float, default=90.0)
    args = parser.parse_args(argv)
    ok, message = check(args.file, args.max_age_seconds)
    print(message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
