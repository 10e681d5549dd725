"""An account's archive over HTTP (admin key): ``GET accounts/{id}/archive`` shows the
cursor, health and skipped messages; ``POST accounts/{id}/archive/pull`` pulls now
(and is how an operator resumes an account marked unhealthy, once fixed)."""

from __future__ import annotations

import json
from typing import Any

import attrs
from sopflow_sdk import (
    ConfigError,
    FatalError,
    Host,
    InboundRequest,
    InboundResponse,
    RetriableError,
    RouteSpec,
)

from sopflow_wecom.archive.job import MAX_BATCHES, health, pull_account
from sopflow_wecom.archive.pull import cursor_key, skipped_key
from sopflow_wecom.events import CHANNEL


def _json(status: int, body: Any) -> InboundResponse:
    return InboundResponse(status, json.dumps(body, ensure_ascii=False), media_type="application/json")


def _account(request: InboundRequest, host: Host) -> tuple[Any, InboundResponse | None]:
    tenant_id = host.authenticate(request.headers, "admin")
    if tenant_id is None:
        return None, _json(
            401, {"title": "Unauthorized", "detail": "send 'Authorization: Bearer <admin key>'"}
        )
    raw = request.path_params.get("account_id", "")
    account = host.channel_account(int(raw)) if str(raw).isdigit() else None
    if account is None or account.tenant_id != tenant_id or account.channel != CHANNEL:
        return None, _json(404, {"title": "Not Found", "detail": "no WeCom channel account with that id"})
    return account, None


def status(request: InboundRequest, host: Host) -> InboundResponse:
    account, refused = _account(request, host)
    if refused:
        return refused
    state = host.state(account.tenant_id)
    cursor = state.get(cursor_key(account.id)) or {}
    return _json(
        200,
        {
            "enabled": bool(account.config.get("archive_enabled")),
            "seq": cursor.get("seq", 0),
            **health(host, account.tenant_id, account.id),
            "skipped": state.get(skipped_key(account.id)) or [],
        },
    )


def pull_now(request: InboundRequest, host: Host) -> InboundResponse:
    account, refused = _account(request, host)
    if refused:
        return refused
    try:
        body = json.loads(request.body or b"{}")
        batches = int(body.get("max_batches", MAX_BATCHES))
    except (ValueError, TypeError, AttributeError):
        return _json(
            422, {"title": "Unprocessable", "detail": "max_batches: send a whole number from 1 to 100"}
        )
    if not 1 <= batches <= 100:
        return _json(
            422, {"title": "Unprocessable", "detail": "max_batches: send a whole number from 1 to 100"}
        )
    try:
        result = pull_account(host, account, max_batches=batches)
    except ConfigError as exc:
        return _json(422, {"title": "Unprocessable", "detail": exc.user_message, "problems": exc.problems})
    except FatalError as exc:
        return _json(409, {"title": "Archive unhealthy", "detail": exc.user_message})
    except RetriableError as exc:
        return _json(503, {"title": "Archive unavailable, retry later", "detail": exc.user_message})
    return _json(200, attrs.asdict(result))


def route_specs() -> list[RouteSpec]:
    return [
        RouteSpec(
            path="accounts/{account_id:int}/archive",
            handler=status,
            methods=("GET",),
            description="The conversation archive of a WeCom account: cursor, health, skipped messages "
            "(admin key)",
        ),
        RouteSpec(
            path="accounts/{account_id:int}/archive/pull",
            handler=pull_now,
            methods=("POST",),
            description="Pull the account's conversation archive now; resumes an account marked unhealthy "
            "(admin key)",
        ),
    ]
