"""The sopflow entry point for WeCom: hook implementations only.

Hooks stay cheap and declarative; the callback handler below is a thin
verify → decrypt → map → ``host.ingest`` function so it answers WeCom well
within its 5 s limit (and the URL handshake within 1 s).

A WeCom channel account carries ``config = {"corp_id": ..., "agent_id": ...}``
and ``secrets = {"secret": ..., "callback_token": ..., "encoding_aes_key": ...}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from sopflow_sdk import (
    ChannelSpec,
    ConfigError,
    Host,
    InboundRequest,
    InboundResponse,
    RouteSpec,
    SignatureError,
    SopflowError,
    hookimpl,
)

from sopflow_wecom import console_panel, importer, moments, store, tags, transfers
from sopflow_wecom.archive import consent
from sopflow_wecom.archive import job as archive_job
from sopflow_wecom.archive import mapping as archive_mapping
from sopflow_wecom.archive import routes as archive_routes
from sopflow_wecom.channel import CALLBACK_MAX_AGE_SECONDS, WECOM_SETTINGS, WeComChannel
from sopflow_wecom.crypto import WeComCrypto, parse_xml
from sopflow_wecom.events import CHANNEL, TAG_TYPE, parse_callback, trigger_specs
from sopflow_wecom.live_codes import live_code, live_codes, sync_route
from sopflow_wecom.profiles import JOB, job_spec
from sopflow_wecom.sidebar import routes as sidebar_routes
from sopflow_wecom.staff_changes import apply_member_change
from sopflow_wecom.transfer_routes import handle_transfers

log = logging.getLogger("sopflow_wecom")

#: Mounted by core at ``/plugins/wecom/callback/{account_id}``.
CALLBACK_PATH = "callback/{account_id:int}"


def _text(status: int, body: str) -> InboundResponse:
    return InboundResponse(status=status, body=body, media_type="text/plain")


def crypto_for(account: Any) -> WeComCrypto:
    """Build the callback crypto from a channel account's config and secrets."""
    config, secrets = account.config, account.secrets
    problems = [
        (f"config.{k}", "set it to the value shown in the WeCom admin console")
        for k in ("corp_id",)
        if not config.get(k)
    ]
    problems += [
        (f"secrets.{k}", "set it to the value from the app's 接收消息 (API receive) settings")
        for k in ("callback_token", "encoding_aes_key")
        if not secrets.get(k)
    ]
    if problems:
        raise ConfigError(problems, subject=f"WeCom account {account.id}")
    return WeComCrypto(secrets["callback_token"], secrets["encoding_aes_key"], config["corp_id"])


def _reject(account_id: int, status: int, reason: str, answer: str | None = None) -> InboundResponse:
    """Refuse a callback and log who it was for and why (never a secret: the
    reasons come from our checks, not from the request)."""
    log.warning("wecom callback refused: account %s: %s", account_id, reason)
    return _text(status, answer or reason)


def _stale(account: Any, timestamp: str, host: Host) -> str | None:
    """Why ``timestamp`` is outside the account's replay window, or None."""
    window = account.config.get("callback_max_age_seconds") or CALLBACK_MAX_AGE_SECONDS
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "timestamp is not a Unix time"
    age = host.now().timestamp() - int(timestamp)
    if abs(age) > window:
        return f"timestamp is {int(age)} s from now, outside the {window} s replay window"
    return None


def handle_callback(request: InboundRequest, host: Host) -> InboundResponse:
    """GET: the echostr handshake.  POST: verify, decrypt, ingest, answer 200 empty."""
    raw_id = request.path_params.get("account_id", "")
    account = host.channel_account(int(raw_id)) if raw_id.isdigit() else None
    if account is None or account.channel != CHANNEL:
        return _text(404, "unknown WeCom account")
    q = request.query
    missing = [k for k in ("msg_signature", "timestamp", "nonce") if not q.get(k)]
    if request.method == "GET" and not q.get("echostr"):
        missing.append("echostr")
    if missing:
        return _reject(account.id, 400, f"missing query parameters: {', '.join(missing)}")
    stale = _stale(account, q["timestamp"], host)
    if stale:
        return _reject(account.id, 403, stale)
    try:
        crypto = crypto_for(account)
        if request.method == "GET":
            plain = crypto.verify_url(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
            return _text(200, plain)
        xml = crypto.decrypt_envelope(q["msg_signature"], q["timestamp"], q["nonce"], request.body)
        events = parse_callback(xml)
        apply_member_change(host, account.tenant_id, parse_xml(xml))  # a member left or is back
    except SignatureError as exc:
        return _reject(account.id, 403, exc.internal_message, exc.user_message)
    except ConfigError as exc:  # an account that takes no callbacks: nothing to retry
        return _reject(account.id, 404, exc.internal_message, exc.user_message)
    if events:
        for ev in events:
            if ev.type == ARCHIVE_APPROVED:  # kept first: the archive pull may run next
                consent.approve(
                    host.state(account.tenant_id),
                    account.id,
                    ev.identity.external_id,
                    ev.identity.staff_external_id,
                )
        outcomes = host.ingest(account.tenant_id, events)
        for ev, outcome in zip(events, outcomes, strict=False):
            if outcome.get("status") == "created":
                _after_ingest(host, account, ev)
    return _text(200, "")  # an empty 200 tells WeCom to stop retrying


#: A customer agreed to the conversation archive (``archive.consent``).
ARCHIVE_APPROVED = "customer.archive_approved"
#: Callbacks after which the customer's profile and corp tags are read (``profiles.py``).
PROFILE_EVENTS = frozenset({"customer.added", "customer.edited"})


def _after_ingest(host: Host, account: Any, ev: Any) -> None:
    """Follow-up work for a new (not duplicate) callback event, as jobs.  Without a
    broker a job runs inline: the event is already stored, so a failure is logged."""
    try:
        if ev.type in PROFILE_EVENTS:
            host.enqueue(
                JOB,
                account_id=account.id,
                external_userid=ev.identity.external_id,
                staff_userid=ev.identity.staff_external_id,
                event_key=ev.idempotency_key,
            )
        elif ev.type == TAG_TYPE:
            _tag_library_changed(host, account, ev)
        elif transfer_ended(ev):
            host.enqueue(transfers.FINISH_JOB, account_id=account.id, external_userid=ev.identity.external_id)
    except SopflowError as exc:
        log.warning("wecom follow-up of %s %s failed: %s", ev.type, ev.identity.external_id, exc)


def transfer_ended(ev: Any) -> bool:
    """A callback telling a handover ended: refused or over the limit (``transfer_fail``),
    or done (the giver's ``del_external_contact`` with ``DELETE_BY_TRANSFER``)."""
    change, source = ev.payload.get("change_type"), ev.payload.get("source")
    return change == "transfer_fail" or (change == "del_external_contact" and source == "DELETE_BY_TRANSFER")


def _tag_library_changed(host: Host, account: Any, ev: Any) -> None:
    """A corp tag (group) was created, renamed, deleted or reordered in WeCom."""
    change, tag_id = ev.payload.get("change_type"), str(ev.payload.get("id") or "")
    tag_type = str(ev.payload.get("tag_type") or "tag")
    old_names = tags.known_names(host, account, tag_id, tag_type)  # before the next read renames
    tags.forget(account.id)
    if change in ("update", "delete") and tag_id and tag_type in ("tag", "tag_group"):
        host.enqueue(
            tags.RESYNC_JOB,
            account_id=account.id,
            cause_key=ev.idempotency_key,
            old_names=old_names,
            tag_id=tag_id if tag_type == "tag" else "",
        )


@hookimpl
def on_event(tenant_id: int, event: Mapping[str, Any], host: Host) -> None:
    """sopflow changed a customer's tags: mark the corp tags in WeCom (as a job)."""
    request = tags.push_request(event)
    if request is None or event.get("customer_id") is None:
        return
    customer = host.customer(tenant_id, int(event["customer_id"]))
    accounts = [a for a in host.channel_accounts(CHANNEL) if a.tenant_id == tenant_id]
    if customer is None or not accounts:
        return
    for ident in customer.identities:
        if ident.channel == CHANNEL and ident.staff_external_id:
            host.enqueue(
                tags.MARK_JOB,
                account_id=accounts[0].id,
                external_userid=ident.external_id,
                staff_userid=ident.staff_external_id,
                tags_add=list(request[0]),
                tags_remove=list(request[1]),
            )


@hookimpl
def register_commands(cli: Any, open_host: Any) -> None:
    from sopflow_wecom import commands  # click is only needed on the command line

    commands.register(cli, open_host)


@hookimpl
def register_triggers(register: Callable[[Any], None]) -> None:
    for spec in (*trigger_specs(), *archive_mapping.trigger_specs()):
        register(spec)


@hookimpl
def register_fields(register: Callable[[Any], None]) -> None:
    for spec in archive_mapping.field_specs():
        register(spec)


@hookimpl
def register_routes(register: Callable[[Any], None]) -> None:
    register(
        RouteSpec(
            path=CALLBACK_PATH,
            handler=handle_callback,
            methods=("GET", "POST"),
            description="WeCom callback URL: echostr handshake (GET) and encrypted events (POST)",
        )
    )
    # One RouteSpec per path (core keys routes by path); the handlers dispatch on the method.
    register(
        RouteSpec(
            path="accounts/{account_id:int}/live-codes",
            handler=live_codes,
            methods=("GET", "POST"),
            description="List (GET) or create (POST) live QR codes (联系我) whose scans carry a source "
            "(admin key)",
        )
    )
    register(
        RouteSpec(
            path="accounts/{account_id:int}/live-codes/{config_id:str}",
            handler=live_code,
            methods=("PATCH", "DELETE"),
            description="Change the source, staff or remark of (PATCH) or delete (DELETE) a live QR code "
            "(admin key)",
        )
    )
    register(
        RouteSpec(
            path="accounts/{account_id:int}/live-codes/sync",
            handler=sync_route,
            methods=("POST",),
            description="Adopt the live QR codes made in the WeCom console into sopflow's list, "
            "and drop the ones WeCom no longer knows (admin key)",
        )
    )
    register(
        RouteSpec(
            path="accounts/{account_id:int}/import",
            handler=importer.handle_import,
            methods=("GET", "POST"),
            description="Import the members' existing WeCom customers (POST, 202) and follow the "
            "progress (GET) (admin key)",
        )
    )
    for spec in archive_routes.route_specs():
        register(spec)
    for spec in sidebar_routes.route_specs():
        register(spec)

    register(
        RouteSpec(
            path="accounts/{account_id:int}/transfers",
            handler=handle_transfers,
            methods=("GET", "POST"),
            description="Hand a member's customers to another member, on-job or after they left "
            "(POST, with a dry run listing what would move), and follow each customer's state (GET) "
            "(admin key)",
        )
    )


@hookimpl
def register_channels(register: Callable[[Any], None]) -> None:
    register(
        ChannelSpec(
            name="wecom",
            factory=WeComChannel,
            settings=WECOM_SETTINGS,
            description="WeCom customer contact: private/group mass sends (staff confirm), "
            "moments, welcome messages, staff notices",
        )
    )


@hookimpl
def register_jobs(register: Callable[[Any], None]) -> None:
    register(job_spec())
    register(importer.job_spec())
    register(archive_job.job_spec())
    register(moments.job_spec())
    for spec in tags.job_specs() + transfers.job_specs():
        register(spec)


@hookimpl
def register_migrations(register: Callable[[Any], None]) -> None:
    register(store.migrations_spec())


@hookimpl
def register_console_pages(register: Callable[[Any], None]) -> None:
    for page in console_panel.console_pages():
        register(page)
