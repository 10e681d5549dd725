"""The sopflow entry point for Salesforce: hook implementations only.

A Salesforce connection is a ``salesforce`` channel account (``settings.py``
says why).  Hooks stay cheap and declarative; the sync (``sync.py``), the
outbox (``outbox.py``) and the import (``importer.py``) are jobs, the mapping
a route (``routes.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sopflow_sdk import ChannelSpec, Host, RouteSpec, hookimpl

from sopflow_salesforce import events, outbox, store, sync
from sopflow_salesforce.connection import CHANNEL, SalesforceConnection
from sopflow_salesforce.routes import handle_mapping, handle_sync
from sopflow_salesforce.settings import SALESFORCE_SETTINGS


@hookimpl
def register_channels(register: Callable[[Any], None]) -> None:
    register(
        ChannelSpec(
            name=CHANNEL,
            factory=SalesforceConnection,
            settings=SALESFORCE_SETTINGS,
            description="a Salesforce org: two-way field sync (JWT bearer or client credentials)",
        )
    )


@hookimpl
def register_triggers(register: Callable[[Any], None]) -> None:
    for spec in events.trigger_specs():
        register(spec)


@hookimpl
def register_routes(register: Callable[[Any], None]) -> None:
    register(
        RouteSpec(
            path="accounts/{account_id:int}/mapping",
            handler=handle_mapping,
            methods=("GET", "PUT"),
            description="The connection's field mapping: read it (GET), or check and store it (PUT) "
            "(admin key)",
        )
    )
    register(
        RouteSpec(
            path="accounts/{account_id:int}/sync",
            handler=handle_sync,
            methods=("POST",),
            description="Read Salesforce's changes and write sopflow's now (admin key)",
        )
    )


@hookimpl
def register_jobs(register: Callable[[Any], None]) -> None:
    register(sync.job_spec())
    register(outbox.job_spec())


@hookimpl
def register_commands(cli: Any, open_host: Any) -> None:
    from sopflow_salesforce import commands  # click is only needed on the command line

    commands.register(cli, open_host)


@hookimpl
def register_migrations(register: Callable[[Any], None]) -> None:
    register(store.migrations_spec())


@hookimpl
def on_event(tenant_id: int, event: Mapping[str, Any], host: Host) -> None:
    events.observe(tenant_id, event, host)
