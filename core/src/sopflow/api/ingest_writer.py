"""Group commit for ``POST /api/v1/events``.

Each request's batch used to be its own transaction: its own lock wait, its own
configuration read and field definitions, its own commit and its own evaluate
message.  Under load most of an event's cost was that fixed part.  Here one
thread writes: the requests that arrived while it wrote the last transaction
go into the next one (up to ``SOPFLOW_INGEST_GROUP_EVENTS`` events), each
request's events ingested in turn as if alone, then one commit, one
announcement per tenant (so evaluation batches too), and every request is
answered with its own outcomes.  No request waits for company: an idle writer
takes a lone request at once.

What a request sees does not change.  It is answered only after the commit
(nothing acknowledged is lost), a duplicate inside one group is a duplicate as
it would be one request later, and a request whose events are refused (a 422)
or that fails the group's transaction is written again alone, so its error is
exactly the one it would have had and the others' events still commit.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

import attrs

from sopflow.app import SopflowApp
from sopflow.engine.customers.event_log import created_events
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.customers.ingest import ingest

log = logging.getLogger("sopflow.api")

#: what the writer's queue is told when the API shuts down
_STOP = object()


@attrs.define
class _Request:
    tenant_id: int
    events: list[dict[str, Any]]
    answer: Future[list[dict[str, Any]]] = attrs.Factory(Future)


class IngestWriter:
    """``IngestWriter(app).submit(tenant_id, events)`` → that batch's outcomes, once committed."""

    def __init__(self, app: SopflowApp, group_events: int) -> None:
        self.app = app
        self.group_events = group_events
        self.transactions = 0  # how many the writer committed (a figure for tests and benches)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, tenant_id: int, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Ingest ``events`` for ``tenant_id``; blocks until their transaction committed."""
        request = _Request(tenant_id, events)
        self._start()
        self._queue.put(request)
        return request.answer.result()

    def close(self) -> None:
        """Answer what is queued, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(30)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sopflow-ingest", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            group, size, stop = [first], len(first.events), False
            while size < self.group_events:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                group.append(more)
                size += len(more.events)
            self._write(group)
            if stop:
                return

    def _write(self, group: list[_Request]) -> None:
        try:
            outcomes, created = self._commit(group)
        except Exception as exc:
            if len(group) == 1:
                group[0].answer.set_exception(exc)
            else:  # someone's events were refused or broke the transaction: each alone
                for request in group:
                    self._write([request])
            return
        for tenant_id, events in created.items():
            self.app.announce(tenant_id, events)  # after the commit; it never raises
        for request, answer in zip(group, outcomes, strict=True):
            request.answer.set_result(answer)

    def _commit(
        self, group: list[_Request]
    ) -> tuple[list[list[dict[str, Any]]], dict[int, list[dict[str, Any]]]]:
        outcomes: list[list[dict[str, Any]]] = []
        created: dict[int, list[dict[str, Any]]] = {}
        with self.app.tx() as session:
            now = self.app.now()
            fields: dict[int, Any] = {}
            for request in group:
                tenant = request.tenant_id
                if tenant not in fields:
                    fields[tenant] = field_definitions(session, tenant, self.app.plugins)
                answer = ingest(session, tenant, request.events, fields[tenant], now, source="api")
                outcomes.append(answer)
                created.setdefault(tenant, []).extend(created_events(session, answer))
        self.transactions += 1
        return outcomes, created
