"""Which broker instance holds the queue: a value that changes when the broker
restarts and so may have lost the messages it held.

Redis: the server's ``run_id`` (new at every start, with or without AOF — an
append-only file written every second still loses the last second).  The
in-memory broker of the embedded mode: an id made when the broker object is
made, so a new process is a new epoch.
"""

from __future__ import annotations

import uuid
from typing import Any

from sopflow.outages import BROKER, DependencyUnavailable


def broker_epoch(broker: Any) -> str:
    """The broker's current epoch; ``DependencyUnavailable`` when it cannot be reached."""
    client = getattr(broker, "client", None)
    if client is None:
        return broker.__dict__.setdefault("_sopflow_epoch", f"memory-{uuid.uuid4().hex}")
    try:
        return f"redis-{client.info('server')['run_id']}"
    except Exception as exc:
        raise DependencyUnavailable(BROKER, str(exc)) from exc
