"""The app and the request's database session as Litestar dependencies.

A handler names what it needs (``sopflow: NamedDependency[SopflowApp]``,
``session: NamedDependency[Session]``) instead of opening it: a GET (or HEAD)
gets a read-only transaction (``EngineContext.read``), every other method one
write transaction (``EngineContext.tx``), committed after the handler returned
and its response was built, rolled back when anything raised — so an error
raised by the commit itself is still the response.  The transaction is entered
and left on a worker thread, never on the event loop.

Events to announce (entry and early-end rules see a change at once) are queued
on the session with :func:`announce_after_commit` and handed on only once the
transaction committed: a rolled-back change is never announced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from anyio import to_thread
from litestar import Request
from litestar.di import Provide

from sopflow.api.ingest_writer import IngestWriter
from sopflow.app import SopflowApp
from sopflow.db import Session

#: methods that only read: their session is a read-only transaction
READ_METHODS = frozenset({"GET", "HEAD"})
_ANNOUNCE = "sopflow_announce"


def provide_app(request: Request) -> SopflowApp:
    """The ``SopflowApp`` the API serves."""
    return request.app.state.sopflow


def provide_ingest_writer(request: Request) -> IngestWriter:
    """The group-commit writer of ``POST /api/v1/events`` (api/ingest_writer.py)."""
    return request.app.state.ingest_writer


async def provide_session(request: Request) -> AsyncIterator[Session]:
    """One transaction for the request (read-only for a GET)."""
    app = provide_app(request)
    scope = app.read() if request.method in READ_METHODS else app.tx()
    session = await to_thread.run_sync(scope.__enter__)
    try:
        yield session
    except BaseException as exc:
        if not await to_thread.run_sync(scope.__exit__, type(exc), exc, exc.__traceback__):
            raise
        return
    await to_thread.run_sync(scope.__exit__, None, None, None)
    pending = session.info.pop(_ANNOUNCE, [])
    if pending:
        await to_thread.run_sync(_announce, app, pending)


def announce_after_commit(session: Session, tenant_id: int, events: list[dict[str, Any]]) -> None:
    """Announce ``events`` of ``tenant_id`` once ``session``'s transaction committed."""
    if events:
        session.info.setdefault(_ANNOUNCE, []).append((tenant_id, events))


def _announce(app: SopflowApp, pending: list[tuple[int, list[dict[str, Any]]]]) -> None:
    for tenant_id, events in pending:
        app.announce(tenant_id, events)


#: the dependencies every handler may name
DEPENDENCIES = {
    "sopflow": Provide(provide_app, sync_to_thread=False),
    "ingest_writer": Provide(provide_ingest_writer, sync_to_thread=False),
    "session": Provide(provide_session),
}
