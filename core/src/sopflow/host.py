"""``PluginHost``: core's implementation of ``sopflow_sdk.Host``.

Plugins get one per plugin; every call is checked against the tenant's plugin
switch, so a plugin disabled for a tenant can neither ingest for it nor read
its channel accounts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sopflow_sdk import (
    ConfigError,
    FatalError,
    FieldSpec,
    IngestEvent,
    OutboundMessage,
    PluginError,
    ScopeError,
    SkippableError,
    SopflowError,
)

from sopflow.engine.context import EngineContext
from sopflow.engine.customers.changes import edit_customer as engine_edit_customer
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.customers.form_values import field_changes
from sopflow.engine.customers.identities import holder_id, staff_by_external_id
from sopflow.engine.customers.ingest import event_to_dict, ingest
from sopflow.engine.customers.overview import customer_overview
from sopflow.engine.customers.records import tags_of
from sopflow.engine.customers.tenants import authenticate
from sopflow.engine.customers.transfers import mark_left
from sopflow.engine.delivery.confirmations import poll_confirmations
from sopflow.engine.delivery.sends import channel_for
from sopflow.errors import InvalidInput
from sopflow.logging import get_logger
from sopflow.models import ChannelAccount, ChannelIdentity, Customer, Event, PendingJob, Staff, Touch
from sopflow.models.touch_status import TouchStatus
from sopflow.outages import BROKER, dependency_of
from sopflow.pagination import MAX_ID
from sopflow.plugin_customers import TransactionCustomers, define_fields
from sopflow.plugin_state import HostTransaction, TenantState

log = get_logger("sopflow.host")


@attrs.frozen
class AccountView:
    id: int
    tenant_id: int
    channel: str
    name: str
    config: Mapping[str, Any]
    secrets: Mapping[str, Any] = attrs.field(repr=False)


@attrs.frozen
class IdentityRow:
    channel: str
    external_id: str
    staff_external_id: str | None


@attrs.frozen
class CustomerRow:
    id: int
    tenant_id: int
    display_name: str
    source: str | None
    fields: Mapping[str, Any]
    tags: frozenset[str]
    identities: tuple[IdentityRow, ...]
    churned: bool


def event_dict(ev: IngestEvent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": ev.type,
        "idempotency_key": ev.idempotency_key,
        "identity": {
            "channel": ev.identity.channel,
            "external_id": ev.identity.external_id,
            "staff_external_id": ev.identity.staff_external_id,
        },
        "payload": dict(ev.payload),
        "fields": dict(ev.fields),
        "tags_add": list(ev.tags_add),
        "tags_remove": list(ev.tags_remove),
    }
    for key in ("occurred_at", "display_name", "source"):
        if getattr(ev, key):
            out[key] = getattr(ev, key)
    if ev.shared_identities:
        out["shared_identities"] = [
            {"channel": i.channel, "external_id": i.external_id} for i in ev.shared_identities
        ]
    if ev.relations:
        out["relations"] = [attrs.asdict(r) for r in ev.relations]
    return out


class PluginHost:
    def __init__(self, ctx: EngineContext, plugin: str) -> None:
        self.app = ctx
        self.plugin = plugin
        self._open = threading.local()  # a host.transaction() is open in this thread

    def now(self) -> datetime:
        return self.app.now()

    def customer(self, tenant_id: int, customer_id: int) -> CustomerRow | None:
        self._outside_transaction("customer", "a call before the block")
        with self.app.tx() as s:
            c = s.get(Customer, customer_id)
            if c is None or c.tenant_id != tenant_id:
                return None
            if not self.app.plugin_enabled(s, tenant_id, self.plugin):
                return None
            rows = s.execute(
                sa.select(ChannelIdentity.channel, ChannelIdentity.external_id, Staff.external_id)
                .outerjoin(Staff, Staff.id == ChannelIdentity.staff_id)
                .where(ChannelIdentity.customer_id == c.id)
                .order_by(ChannelIdentity.id)
            ).all()
            return CustomerRow(
                c.id,
                c.tenant_id,
                c.display_name,
                c.source,
                dict(c.fields or {}),
                frozenset(tags_of(s, c.id)),
                tuple(IdentityRow(ch, ext, st) for ch, ext, st in rows),
                c.churned_at is not None,
            )

    def customer_overview(self, tenant_id: int, channel: str, external_id: str) -> dict[str, Any] | None:
        """The customer holding the identity ``channel``/``external_id`` at a glance:
        ``customer_id``, ``stages``, ``sops`` and today's ``touches``
        (``engine.customers.overview``); ``None`` when no customer of the tenant holds
        it (or the plugin is off for the tenant)."""
        self._outside_transaction("customer_overview", "a call before the block")
        with self.app.tx() as s:
            if not self.app.plugin_enabled(s, tenant_id, self.plugin):
                return None
            customer_id = holder_id(s, tenant_id, channel, external_id)
            if customer_id is None:
                return None
            return {
                "customer_id": customer_id,
                **customer_overview(s, tenant_id, customer_id, self.app.now()),
            }

    def confirm_touches(
        self, tenant_id: int, touch_ids: Sequence[int], *, tap: str | None = None, staff: str | None = None
    ) -> dict[int, str]:
        """Ask the channels now whether these touches awaiting staff (``pending``) were
        sent, through the engine's confirmation path (``poll_confirmations``: each
        touch moves once, under its row lock); the tenant's touches among them and
        their status after.  ``tap`` (``"sent"`` or ``"skip"``, by the member
        ``staff``) is recorded first on each pending touch that has none yet
        (``outcome.tap``), so a second tap changes nothing."""
        self._outside_transaction("confirm_touches", "a call after the block")
        if tap not in (None, "sent", "skip"):
            raise FatalError(f"tap: {tap!r} is not a tap; give 'sent' or 'skip'")
        ids = [int(i) for i in touch_ids]
        with self.app.tx() as s:
            if not ids or not self.app.plugin_enabled(s, tenant_id, self.plugin):
                return {}
            mine = list(s.scalars(sa.select(Touch.id).where(Touch.tenant_id == tenant_id, Touch.id.in_(ids))))
            if tap is not None:
                for touch_id in mine:
                    touch = s.get(Touch, touch_id, with_for_update=True)
                    if touch.status == TouchStatus.PENDING and not (touch.outcome or {}).get("tap"):
                        mark = {"answer": tap, "staff": staff, "at": self.app.now().isoformat()}
                        touch.outcome = {**(touch.outcome or {}), "tap": mark}
        if mine:
            poll_confirmations(self.app, len(mine), only=mine)
        with self.app.tx() as s:
            return {
                i: str(st) for i, st in s.execute(sa.select(Touch.id, Touch.status).where(Touch.id.in_(mine)))
            }

    def edit_customer(
        self,
        tenant_id: int,
        channel: str,
        external_id: str,
        fields: Mapping[str, str],
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        *,
        staff: str,
    ) -> dict[str, str]:
        """Edit the customer holding ``channel``/``external_id`` as the console's
        customer page does: ``fields`` is each field's typed text (``form_values``),
        validated by the engine, recorded as a ``customer.updated`` event with
        ``staff`` as its actor.  Returns the problems by field (``tags`` for a tag),
        each naming the fix; any problem and nothing is changed.  ``{}``: saved."""
        self._outside_transaction("edit_customer", "a call after the block")
        try:
            with self.app.tx() as s:
                self._check_enabled(s, tenant_id)
                customer_id = holder_id(s, tenant_id, channel, external_id)
                if customer_id is None:
                    return {"customer": f"no customer holds the {channel} identity {external_id!r}"}
                defs = field_definitions(s, tenant_id, self.app.plugins)
                problems = {
                    key: (
                        f"{key} is written only by its plugin; change it there"
                        if key in defs
                        else f"unknown field {key!r}; define it under /api/v1/fields first"
                    )
                    for key in fields
                    if key not in defs or getattr(defs[key], "read_only", False)
                }
                if problems:
                    return problems
                current = s.get(Customer, customer_id)
                form = {f"field.{k}": str(v) for k, v in fields.items()}
                body: dict[str, Any] = {}
                changed = field_changes(form, defs, dict(current.fields or {}))
                if changed:
                    body["fields"] = changed
                tags = set(tags_of(s, customer_id))
                if [t for t in add_tags if t not in tags]:
                    body["tags_add"] = [t for t in add_tags if t not in tags]
                if [t for t in remove_tags if t in tags]:
                    body["tags_remove"] = [t for t in remove_tags if t in tags]
                if not body:
                    return {}
                _, event = engine_edit_customer(
                    s,
                    self.app.plugins,
                    tenant_id,
                    customer_id,
                    body,
                    self.app.now(),
                    source=self.plugin,
                    actor=staff,
                )
        except InvalidInput as exc:
            problems = {}
            for e in exc.errors:
                name = str(e["field"])
                key = "tags" if name.startswith(("tags_add", "tags_remove")) else name.removeprefix("fields.")
                problems.setdefault(key, e["message"])
            return problems
        self.app.announce(tenant_id, [event])
        return {}

    def fields(self, tenant_id: int) -> dict[str, Any]:
        """Every customer field of the tenant by key (``key``, ``type``, ``label``,
        ``choices``, ``description``, ``read_only``)."""
        self._outside_transaction("fields", "a call before the block")
        with self.app.tx() as s:
            self._check_enabled(s, tenant_id)
            return dict(field_definitions(s, tenant_id, self.app.plugins))

    def _check_enabled(self, session: Any, tenant_id: int) -> None:
        if not self.app.plugin_enabled(session, tenant_id, self.plugin):
            raise FatalError(
                f"plugin '{self.plugin}' is disabled for tenant {tenant_id}; "
                f"enable it with PUT /api/v1/plugins/{self.plugin}"
            )

    def _ingest_in(self, session: Any, tenant_id: int, events: Sequence[IngestEvent]) -> tuple[list, list]:
        """Ingest on ``session``: the outcomes and the created events (to announce after commit)."""
        defs = field_definitions(session, tenant_id, self.app.plugins)
        outcomes = ingest(
            session,
            tenant_id,
            [event_dict(e) for e in events],
            defs,
            self.app.now(),
            source=self.plugin,
            allow_read_only=True,
        )
        ids = [o["event_id"] for o in outcomes if o["status"] == "created"]
        if not ids:
            return outcomes, []
        created = [event_to_dict(e) for e in session.scalars(sa.select(Event).where(Event.id.in_(ids)))]
        return outcomes, created

    def ingest(self, tenant_id: int, events: Sequence[IngestEvent]) -> list[dict[str, Any]]:
        self._outside_transaction("ingest", "tx.ingest")
        with self.transaction(tenant_id) as tx:
            return [dict(o) for o in tx.ingest(events)]

    def notify_staff(
        self, tenant_id: int, channel: str, staff_external_id: str, text: str, *, key: str
    ) -> bool:
        """A ``staff_notice`` through the tenant's ``channel`` account, once per ``key``
        (kept in this plugin's state: marked before the send, so a crash mid-send
        loses the notice rather than sending it twice)."""
        self._outside_transaction("notify_staff", "a call after the block")
        state = self.state(tenant_id)
        mark = f"staff_notice.{key}"
        if not state.add(mark, {"at": self.app.now().isoformat(), "status": "sending"}):
            return False  # told before (or another process is telling them now)
        message = OutboundMessage(
            touchpoint="staff_notice",
            text=text,
            idempotency_key=f"notice:{self.plugin}:{key}"[:200],
            recipient={"staff_external_id": staff_external_id},
            staff_external_id=staff_external_id,
        )
        try:
            with self.app.read() as s:
                reg = self.app.plugins.registry.get("register_channels", channel)
                if reg is not None and not self.app.plugin_enabled(s, tenant_id, reg.plugin):
                    raise SkippableError(f"plugin {reg.plugin!r} is switched off for the tenant")
                live, _account_id = channel_for(self.app, tenant_id, channel, s)
            live.check(message)
            live.send(message)
        except Exception as exc:  # the caller's own work goes on: logged, recorded, not raised
            reason = exc.user_message if isinstance(exc, SopflowError) else type(exc).__name__
            log.warning("staff_notice_not_sent", plugin=self.plugin, channel=channel, reason=reason)
            state.set(mark, {"at": self.app.now().isoformat(), "status": "failed", "reason": reason})
            return False
        state.set(mark, {"at": self.app.now().isoformat(), "status": "sent"})
        return True

    def _outside_transaction(self, what: str, instead: str) -> None:
        # A second transaction from the same thread would wait on the first's lock
        # (SQLite) or commit apart from it (Postgres): refuse it with the fix.
        if getattr(self._open, "active", False):
            raise PluginError(
                f"plugin '{self.plugin}' called host.{what}() inside host.transaction(); "
                f"use {instead} so both commit together"
            )

    def state(self, tenant_id: int) -> TenantState:
        """This plugin's key-value state for ``tenant_id``; each call is its own transaction."""
        self._outside_transaction("state", "tx.state")

        @contextmanager
        def scope() -> Iterator[Any]:
            self._outside_transaction("state", "tx.state")
            with self.app.tx() as s:
                self._check_enabled(s, tenant_id)
                yield s

        return TenantState(self.plugin, tenant_id, scope, self.app.now)

    @contextmanager
    def transaction(self, tenant_id: int) -> Iterator[HostTransaction]:
        """Ingest, state and the plugin's own tables in one transaction; the new
        events are announced and evaluated after the commit."""
        self._outside_transaction("transaction", "the open transaction's tx")
        self._open.active = True
        try:
            with self.app.tx() as s:
                self._check_enabled(s, tenant_id)
                tx = HostTransaction(
                    self.plugin,
                    tenant_id,
                    s,
                    lambda session, events: self._ingest_in(session, tenant_id, events),
                    self.app.now,
                    TransactionCustomers(s, tenant_id, self.app.now()),
                )
                yield tx
        finally:
            self._open.active = False
        self.app.announce(tenant_id, list(tx.created))

    def _view(self, a: ChannelAccount) -> AccountView:
        return AccountView(
            a.id,
            a.tenant_id,
            a.channel,
            a.name,
            dict(a.config),
            self.app.credentials.open(a.secrets_ciphertext),
        )

    def channel_accounts(self, channel: str) -> list[AccountView]:
        self._outside_transaction("channel_accounts", "a call before the block")
        with self.app.tx() as s:
            rows = list(
                s.scalars(
                    sa.select(ChannelAccount)
                    .where(ChannelAccount.channel == channel)
                    .order_by(ChannelAccount.id)
                )
            )
            off = {r.tenant_id for r in rows if not self.app.plugin_enabled(s, r.tenant_id, self.plugin)}
            return [self._view(a) for a in rows if a.tenant_id not in off]

    def channel_account(self, account_id: int) -> AccountView | None:
        self._outside_transaction("channel_account", "a call before the block")
        if not 1 <= account_id <= MAX_ID:  # from a URL: no row has it, and the driver would overflow
            return None
        with self.app.tx() as s:
            a = s.get(ChannelAccount, account_id)
            if a is None or not self.app.plugin_enabled(s, a.tenant_id, self.plugin):
                return None
            return self._view(a)

    def authenticate(self, headers: Mapping[str, str], scope: str) -> int | None:
        self._outside_transaction("authenticate", "a call before the block")
        lowered = {k.lower(): v for k, v in headers.items()}
        scheme, _, token = lowered.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        with self.app.tx() as s:
            key = authenticate(s, token.strip())
            if key is None:
                return None
            scopes = set(key.scopes.split(","))
            if not {"admin", scope} & scopes:
                raise ScopeError(
                    f"this API key has scopes {sorted(scopes)}; this operation needs '{scope}'. "
                    "Create a key with that scope (POST /api/v1/api-keys with an admin key)"
                )
            if not self.app.plugin_enabled(s, key.tenant_id, self.plugin):
                raise ScopeError(
                    f"the plugin {self.plugin!r} is off for this tenant; switch it on with "
                    f"PUT /api/v1/plugins/{self.plugin}"
                )
            return key.tenant_id

    def define_fields(self, tenant_id: int, specs: Sequence[FieldSpec]) -> list[str]:
        self._outside_transaction("define_fields", "a call before the block")
        with self.app.tx() as s:
            self._check_enabled(s, tenant_id)
            try:
                return define_fields(s, tenant_id, self.app.plugins, self.app.now(), specs)
            except InvalidInput as exc:
                raise ConfigError(
                    [(e["field"], e["message"]) for e in exc.errors], subject=f"plugin '{self.plugin}' fields"
                ) from None

    def staff_left(self, tenant_id: int, staff_external_id: str, left: bool = True) -> bool:
        self._outside_transaction("staff_left", "a call after the block")
        with self.app.tx() as s:
            self._check_enabled(s, tenant_id)
            staff = staff_by_external_id(s, tenant_id, staff_external_id, self.app.now())
            return mark_left(s, staff, left, self.app.now())

    def enqueue(self, job: str, **kwargs: Any) -> None:
        self._outside_transaction("enqueue", "a call after the block")
        enqueue_job(self.app, job, kwargs)


def run_job(ctx: EngineContext, name: str, kwargs: dict[str, Any], job_id: int | None = None) -> None:
    """Run the plugin job ``name`` (a ``JobSpec``) with its plugin's host, then
    delete its pending row (``job_id``): a job runs at least once, and again only
    when its process died between running it and that delete."""
    reg = ctx.plugins.registry.get("register_jobs", name)
    if reg is None:
        raise PluginError(f"no job named {name!r} is registered; is its plugin enabled?")
    reg.spec.fn(PluginHost(ctx, reg.plugin), **kwargs)
    if job_id is not None:
        with ctx.tx() as s:
            s.execute(sa.delete(PendingJob).where(PendingJob.id == job_id))


def enqueue_job(ctx: EngineContext, name: str, kwargs: dict[str, Any], *, durable: bool = True) -> None:
    """Queue the plugin job ``name``: a ``pending_jobs`` row is its durable record,
    then the message goes to the broker (run inline without one).  A failed or
    lost hand-off leaves the row for the scheduler's sweep, so a broker outage
    delays the job and never drops it.  ``durable=False`` for periodic jobs,
    which fire again at their next period anyway."""
    if ctx.plugins.registry.get("register_jobs", name) is None:
        raise PluginError(f"no job named {name!r} is registered; register it with register_jobs")
    if not durable:
        ctx.enqueue("plugin_job", name, kwargs)
        return
    with ctx.tx() as s:
        job = PendingJob(name=name, kwargs=dict(kwargs), created_at=ctx.now())
        s.add(job)
        s.flush()
        job_id = job.id
    hand_off(ctx, job_id, name, kwargs)


def hand_off(ctx: EngineContext, job_id: int | None, name: str, kwargs: dict[str, Any]) -> bool:
    """Send a pending job's message and mark it handed off; False (logged once per
    interval) when the broker would not take it: the sweep sends it later.  Run
    inline (no broker), a job that raises is the caller's error, as it always
    was: its row goes, it is not retried behind the caller's back."""
    try:
        ctx.enqueue("plugin_job", name, kwargs, job_id)
    except Exception as exc:
        if dependency_of(exc) == BROKER:
            ctx.failures.report("plugin_job_handoff_failed", exc, job=name)
            return False
        with ctx.tx() as s:
            s.execute(sa.delete(PendingJob).where(PendingJob.id == job_id))
        raise
    if getattr(ctx, "broker", None) is None:
        return True  # run inline: the job ran and deleted its own row, nothing to mark
    with ctx.tx() as s:
        s.execute(sa.update(PendingJob).where(PendingJob.id == job_id).values(handed_off=True))
    return True
