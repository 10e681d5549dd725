"""The ``links`` plugin: ``{{ track("https://…") }}`` in SOP content becomes a
per-customer signed link through sopflow that records the read and redirects.

A tenant connects one ``tracked_links`` account: the public address of
sopflow, the destination hosts allowed (no open redirect: any other host is
refused when the message is rendered and again when the link is opened), the
signing key, and extra preview user agents.  Each counted open ingests
``article.read`` (``track(url)``) or ``link.clicked`` (``track(url, kind="link")``)
and sets ``reads.count`` and ``reads.last_at``; previews and prefetches are
redirected without counting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sopflow_sdk import (
    ChannelSpec,
    FieldSpec,
    Host,
    Identity,
    InboundRequest,
    InboundResponse,
    IngestEvent,
    RouteSpec,
    Setting,
    SettingsSchema,
    TemplateCall,
    TemplateFunctionSpec,
    TriggerSpec,
    hookimpl,
)

from sopflow_forms import link_reads, link_tokens
from sopflow_forms.inbound import Rejected, account_for, reject, secret_value
from sopflow_forms.sources import inbound_channel

CHANNEL = "tracked_links"
KINDS = {"article": "article.read", "link": "link.clicked"}
LINK_SETTINGS = SettingsSchema(
    Setting(
        "public_url",
        required=True,
        pattern=r"https?://\S+",
        example="https://sopflow.example.com",
        description="the address customers reach sopflow at (links are built on it)",
    ),
    Setting(
        "allowed_hosts",
        required=True,
        min_length=1,
        max_length=2000,
        example="mp.weixin.qq.com,.example.com",
        description="comma-separated destination hosts; '.example.com' allows every subdomain",
    ),
    Setting(
        "preview_agents",
        max_length=2000,
        default="",
        description="comma-separated user-agent substrings of preview fetchers, beyond the built-in list",
    ),
    Setting(
        "signing_key",
        secret=True,
        required=True,
        min_length=32,
        max_length=256,
        description="the HMAC key links are signed with (changing it breaks links already sent)",
    ),
)


def _account(accounts: tuple[Any, ...]) -> Any:
    accounts = tuple(a for a in accounts if a.channel == CHANNEL)
    if not accounts:
        raise ValueError(
            f"connect a {CHANNEL} channel account (public_url, allowed_hosts, signing_key) first"
        )
    return min(accounts, key=lambda a: a.id)


def track(call: TemplateCall, url: str, kind: str = "article") -> str:
    """The template function: a signed link for ``call.customer_id`` to ``url``."""
    if kind not in KINDS:
        raise ValueError(f"track(url, kind=...): kind is one of {', '.join(KINDS)}")
    account = _account(call.accounts)
    if not link_reads.allowed(url, link_reads.split_list(account.config.get("allowed_hosts"))):
        raise ValueError(
            f"{url!r} is not on the allow-list; add its host to allowed_hosts of channel account {account.id}"
        )
    claims = {"c": call.customer_id, "u": url, "k": kind, "t": call.touch_id}
    token = link_tokens.sign(secret_value(account, "signing_key"), claims)
    return f"{str(account.config['public_url']).rstrip('/')}/plugins/links/r/{account.id}/{token}"


def _redirect(url: str) -> InboundResponse:
    return InboundResponse(
        status=302,
        body=b"",
        media_type="text/plain",
        headers={"Location": url, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def handle_open(request: InboundRequest, host: Host) -> InboundResponse:
    """Verify the link, count the read unless it is a preview, redirect."""
    try:
        account = account_for(host, request, CHANNEL)
        claims = link_tokens.verify(
            secret_value(account, "signing_key"), request.path_params.get("token", "")
        )
        if claims is None or not isinstance(claims.get("c"), int) or claims.get("k") not in KINDS:
            raise Rejected(403, "the link's signature does not match; it was changed or is not ours")
        url = str(claims.get("u", ""))
        if not link_reads.allowed(url, link_reads.split_list(account.config.get("allowed_hosts"))):
            raise Rejected(403, "the destination is not on the tenant's allow-list")
    except Rejected as exc:
        return reject("tracked_links", exc, request)
    if not link_reads.is_preview(request, link_reads.split_list(account.config.get("preview_agents"))):
        _count(host, account, claims)
    return _redirect(url)


def _count(host: Host, account: Any, claims: dict[str, Any]) -> None:
    customer = host.customer(account.tenant_id, claims["c"])
    if customer is None or not customer.identities:
        return  # a deleted customer, or one with no identity: still let the reader through
    ident = customer.identities[0]
    now = host.now()
    with host.transaction(account.tenant_id) as tx:
        key = f"reads.{customer.id}"
        count = int(tx.state.get(key, 0, lock=True) or 0) + 1
        tx.state.set(key, count)
        tx.ingest(
            [
                IngestEvent(
                    type=KINDS[claims["k"]],
                    identity=Identity(ident.channel, ident.external_id),
                    idempotency_key=f"links:{customer.id}:{count}",
                    occurred_at=now.isoformat(),
                    payload={"url": claims["u"], "touch_id": claims.get("t"), "count": count},
                    fields={"reads.count": count, "reads.last_at": now.isoformat()},
                )
            ]
        )


@hookimpl
def register_channels(register: Callable[[Any], None]) -> None:
    channel = inbound_channel(CHANNEL)
    register(
        ChannelSpec(
            name=CHANNEL,
            factory=channel,
            settings=LINK_SETTINGS,
            capabilities=channel.capabilities,
            description="tracked links: where {{ track() }} links point and which hosts they may "
            "reach (sends nothing)",
        )
    )


@hookimpl
def register_routes(register: Callable[[Any], None]) -> None:
    register(
        RouteSpec(
            path="r/{account_id:int}/{token:str}",
            handler=handle_open,
            methods=("GET", "HEAD"),
            description="A tracked link: counts the read (not previews) and redirects",
        )
    )


@hookimpl
def register_template_functions(register: Callable[[Any], None]) -> None:
    register(
        TemplateFunctionSpec("track", fn=track, description="a per-customer tracked link to an allowed URL")
    )


@hookimpl
def register_fields(register: Callable[[Any], None]) -> None:
    register(
        FieldSpec(
            key="reads.count",
            type="number",
            label="Tracked link opens",
            description="opens of tracked links by the customer, previews and prefetches not counted",
        )
    )
    register(FieldSpec(key="reads.last_at", type="datetime", label="Last tracked link open"))


@hookimpl
def register_triggers(register: Callable[[Any], None]) -> None:
    register(
        TriggerSpec("article.read", "the customer opened a tracked article link; payload.url, payload.count")
    )
    register(TriggerSpec("link.clicked", "the customer opened a tracked link; payload.url, payload.count"))
