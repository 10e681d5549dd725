"""The ``orders`` plugin: shop pushes in, order facts and ``orders.*`` fields out.

Routes (mounted by core under ``/plugins/orders/``):

- ``youzan/{account_id}``: 有赞云 message pushes (``Event-Sign``);
- ``shop/{account_id}``: the generic signed shop webhook (HMAC-SHA256).

Each verified message is applied to the fact table and its events ingested in
one plugin transaction, under the source account's lock, so the stored facts,
the events and the customer's derived fields commit together.
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
    TriggerSpec,
    hookimpl,
)

from sopflow_forms import order_facts, order_store, shop_webhook, youzan
from sopflow_forms.inbound import Rejected, account_for, check_size, json_ok, reject, secret_value
from sopflow_forms.money import fen_to_yuan
from sopflow_forms.order_model import OrderMessage
from sopflow_forms.order_model import check as check_message
from sopflow_forms.sources import inbound_channel

YOUZAN_SETTINGS = SettingsSchema(
    Setting(
        "client_id",
        required=True,
        min_length=1,
        max_length=64,
        example="a1b2c3d4e5f6",
        description="the 有赞云 app's client_id (应用管理 → 凭证)",
    ),
    Setting(
        "client_secret",
        secret=True,
        required=True,
        min_length=8,
        max_length=128,
        description="the 有赞云 app's client_secret; signs every push (Event-Sign)",
    ),
)
SHOP_SETTINGS = SettingsSchema(
    Setting("shop", max_length=100, example="sunscreen-store", description="the shop's name, for people"),
    Setting(
        "signing_secret",
        secret=True,
        required=True,
        min_length=16,
        max_length=256,
        description="the HMAC-SHA256 key the shop signs each body with (X-Sopflow-Signature)",
    ),
)


def handle_youzan(request: InboundRequest, host: Host) -> InboundResponse:
    """Verify, decode and record one 有赞 push; answer ``{"code":0,"msg":"success"}``."""
    try:
        check_size(request)
        account = account_for(host, request, "youzan")
        youzan.verify(
            request,
            request.body,
            str(account.config.get("client_id", "")),
            secret_value(account, "client_secret"),
        )
        msg = youzan.parse(request.body)
        if msg is not None:
            record(host, account, msg, youzan.PROVIDER)
    except Rejected as exc:
        return reject(youzan.PROVIDER, exc, request)
    return json_ok(youzan.ACK)


def handle_shop(request: InboundRequest, host: Host) -> InboundResponse:
    """Verify and record one generic shop message; answer ``{"status": "accepted"|"duplicate"}``."""
    try:
        check_size(request)
        account = account_for(host, request, "shop_webhook")
        shop_webhook.verify(request, secret_value(account, "signing_secret"))
        msg = shop_webhook.parse(request.body)
        status = record(host, account, msg, shop_webhook.PROVIDER)
    except Rejected as exc:
        return reject(shop_webhook.PROVIDER, exc, request)
    return json_ok({"status": status})


def record(host: Host, account: Any, msg: OrderMessage, provider: str) -> str:
    """Apply ``msg`` and ingest what it implies, in one transaction; ``"duplicate"``
    when its id was seen before."""
    problems = check_message(msg)
    if problems:
        raise Rejected(400, "; ".join(problems))
    with host.transaction(account.tenant_id) as tx:
        lock_key = f"lock.{account.id}"
        if tx.state.get(lock_key, lock=True) is None:  # the first message of an account makes the row
            tx.state.set(lock_key, 1)
            tx.state.get(lock_key, lock=True)
        affected = order_facts.apply(
            tx.connection, account.tenant_id, account.id, msg, int(host.now().timestamp())
        )
        if affected is None:
            return "duplicate"
        for identity in sorted(affected):
            fields = order_facts.derived_fields(tx.connection, account.tenant_id, identity)
            events = [
                _event(e, identity, fields, account, provider, msg.order_id)
                for e in order_facts.order_events(tx.connection, account.id, msg.order_id)
                if _buyer_of(tx.connection, account.id, msg.order_id) == identity
            ]
            outcomes = tx.ingest(events) if events else []
            if not any(o.get("status") == "created" for o in outcomes):
                # the message changed facts behind events already told: carry the new fields anyway
                tx.ingest(
                    [
                        IngestEvent(
                            type="order.updated",
                            identity=Identity(*identity),
                            idempotency_key=f"orders:{account.id}:msg:{msg.msg_id}:{identity[0]}:{identity[1]}"[
                                :200
                            ],
                            payload={
                                "order_id": msg.order_id,
                                "provider": provider,
                                "account_id": account.id,
                            },
                            fields=fields,
                        )
                    ]
                )
    return "accepted"


def _buyer_of(conn: Any, account_id: int, order_id: str) -> tuple[str, str] | None:
    return order_facts._buyer(order_facts._order(conn, account_id, order_id))


def _event(
    e: dict[str, Any],
    identity: tuple[str, str],
    fields: dict[str, Any],
    account: Any,
    provider: str,
    order_id: str,
) -> IngestEvent:
    payload: dict[str, Any] = {"order_id": order_id, "provider": provider, "account_id": account.id}
    if "amount_fen" in e:
        payload.update(amount=fen_to_yuan(e["amount_fen"]), amount_fen=e["amount_fen"])
    if "refund_id" in e:
        payload["refund_id"] = e["refund_id"]
    when = e.get("at")
    return IngestEvent(
        type=e["type"],
        identity=Identity(*identity),
        idempotency_key=e["key"][:200],
        payload=payload,
        fields=fields,
        occurred_at=order_facts._iso(when) if when else None,
    )


@hookimpl
def register_channels(register: Callable[[Any], None]) -> None:
    register(
        ChannelSpec(
            name="youzan",
            factory=inbound_channel("youzan"),
            settings=YOUZAN_SETTINGS,
            capabilities=inbound_channel("youzan").capabilities,
            description="有赞云 shop: receives order and refund pushes (sends nothing)",
        )
    )
    register(
        ChannelSpec(
            name="shop_webhook",
            factory=inbound_channel("shop_webhook"),
            settings=SHOP_SETTINGS,
            capabilities=inbound_channel("shop_webhook").capabilities,
            description="any shop posting HMAC-signed order messages (sends nothing)",
        )
    )


@hookimpl
def register_routes(register: Callable[[Any], None]) -> None:
    register(
        RouteSpec(
            path="youzan/{account_id:int}",
            handler=handle_youzan,
            methods=("POST",),
            description="有赞云 message push URL (Event-Sign checked)",
        )
    )
    register(
        RouteSpec(
            path="shop/{account_id:int}",
            handler=handle_shop,
            methods=("POST",),
            description="Generic shop order webhook (X-Sopflow-Signature: HMAC-SHA256 of the body)",
        )
    )


@hookimpl
def register_fields(register: Callable[[Any], None]) -> None:
    register(
        FieldSpec(
            key="orders.count",
            type="number",
            label="Paid orders",
            description="orders with a paid message seen, whatever happened after",
        )
    )
    register(
        FieldSpec(
            key="orders.total_spend",
            type="number",
            label="Total spend (fen)",
            description="sum of the paid amounts, in fen (分), before refunds",
        )
    )
    register(FieldSpec(key="orders.first_at", type="datetime", label="First paid order"))
    register(FieldSpec(key="orders.last_at", type="datetime", label="Last paid order"))
    register(
        FieldSpec(
            key="orders.refunded_total",
            type="number",
            label="Refunded (fen)",
            description="sum of the refunds whose latest state is success, in fen (分)",
        )
    )


@hookimpl
def register_triggers(register: Callable[[Any], None]) -> None:
    register(
        TriggerSpec("order.refunded", "a refund of an order succeeded; payload.amount, payload.refund_id")
    )
    register(
        TriggerSpec("order.closed", "an order was closed (cancelled unpaid, or closed after a full refund)")
    )
    register(
        TriggerSpec(
            "order.updated",
            "a shop message changed an order's facts without a new paid, "
            "refunded or closed event; the orders.* fields are current",
        )
    )


@hookimpl
def register_migrations(register: Callable[[Any], None]) -> None:
    register(order_store.migrations_spec())
