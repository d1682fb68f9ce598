"""The embedded stack's AWS emulation: moto's server, with DynamoDB requests atomic.

DynamoDB applies each request to an item atomically, so a conditional write has one
winner. moto's server is threaded and its DynamoDB backend takes no lock: eight racing
``ACCEPTED -> FRAMING`` transitions of one job had two winners in 2 runs of 6
(``tests/integration/test_core_stores.py``). brandlens's guarantees rest on that
atomicity (one job per object version, one aggregation per job, each batch counted
once, one training version per dataset), so here DynamoDB requests are served one at a
time. Each takes about a millisecond; the slow requests, SQS long polls, are untouched.

Run: ``python -m brandlens_cli.motoserver -H 127.0.0.1 -p PORT`` (moto.server's options).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_LOCK = threading.Lock()
_call_action = DynamoHandler.call_action


def _one_at_a_time(self: DynamoHandler) -> Any:
    with _LOCK:
        return _call_action(self)


DynamoHandler.call_action = _one_at_a_time  # type: ignore[method-assign]

if __name__ == "__main__":
    main(sys.argv[1:])
