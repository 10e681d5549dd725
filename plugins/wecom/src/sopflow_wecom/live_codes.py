"""Live QR codes (渠道活码): ``联系我`` contact ways whose ``state`` is the source.

A customer who scans one is added to one of the listed staff members, and the
``add_external_contact`` callback carries the ``state`` back; the callback
handler turns it into the customer's ``source``, which SOP targets select on.

The plugin keeps its codes in its own table (``store.live_codes``): a code
made, changed or deleted here is written there after WeCom accepted it, so the
list is read from sopflow's database without a WeCom call.  Codes made in the
WeCom console are adopted by a sync, which walks ``list_contact_way`` back to
2021-07-10 and reads each code with ``get_contact_way``; it also drops codes
WeCom no longer knows.

Routes (an admin API key of the account's tenant, ``Authorization: Bearer``):

- ``GET /plugins/wecom/accounts/{account_id}/live-codes?limit=&cursor=`` → 200
  ``{"items": [{config_id, source, staff, remark, qr_code, multi_person,
  created_between}], "next_cursor": ...}``, newest first, from the table
- ``POST /plugins/wecom/accounts/{account_id}/live-codes/sync`` → 200
  ``{"adopted": n, "updated": n, "removed": n}``
- ``POST /plugins/wecom/accounts/{account_id}/live-codes`` with
  ``{"source": "qr_spring", "staff": ["zhangsan"], "remark": "..."}`` → 201
  ``{"config_id": ..., "qr_code": ..., "source": ...}``
- ``PATCH /plugins/wecom/accounts/{account_id}/live-codes/{config_id}`` with any of
  ``source``, ``staff``, ``remark`` → 200 with the code as listed
- ``DELETE /plugins/wecom/accounts/{account_id}/live-codes/{config_id}`` → 204
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import ConfigError, Host, InboundRequest, InboundResponse, SopflowError

from sopflow_wecom import store
from sopflow_wecom.channel import account_channel
from sopflow_wecom.events import CHANNEL

#: WeCom's limit on ``state`` (and so on a live code's source name).
MAX_STATE = 30
#: WeCom's limit on members behind one multi-person code.
MAX_STAFF = 100
#: WeCom's limit on a contact way's remark.
MAX_REMARK = 30
#: ``list_contact_way`` knows only ways created after 2021-07-10 00:00 China time.
LIST_EPOCH = 1_625_846_400
#: ``list_contact_way`` is walked back in windows this long (WeCom's default span).
LIST_WINDOW = 90 * 86_400
#: Codes per page of the list route.
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
#: ``get_contact_way``'s answer for an unknown (or deleted) config id.
UNKNOWN_CONFIG_ERRCODE = 40058
FIELDS = ("source", "staff", "remark")


def problem(status: int, title: str, detail: str, field: str | None = None) -> InboundResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if field:
        body["errors"] = [{"field": field, "message": detail}]
    return InboundResponse(status, json.dumps(body, ensure_ascii=False), "application/problem+json")


def _invalid(field: str, detail: str) -> InboundResponse:
    return problem(422, "Unprocessable Entity", detail, field)


def json_response(status: int, body: Any) -> InboundResponse:
    return InboundResponse(status, json.dumps(body, ensure_ascii=False), "application/json")


def account_for(request: InboundRequest, host: Host) -> tuple[Any, InboundResponse | None]:
    tenant_id = host.authenticate(request.headers, "admin")
    if tenant_id is None:
        return None, problem(401, "Unauthorized", "send 'Authorization: Bearer <admin api key>'")
    try:
        account = host.channel_account(int(request.path_params.get("account_id", "")))
    except ValueError:
        account = None
    if account is None or account.tenant_id != tenant_id or account.channel != CHANNEL:
        return None, problem(404, "Not Found", "no WeCom channel account with that id in this tenant")
    return account, None


def _wecom_failed(exc: SopflowError, what: str) -> InboundResponse:
    """A WeCom error as the create route has always answered it."""
    if isinstance(exc, ConfigError):
        return problem(409, "Conflict", exc.user_message)
    return problem(502, "Bad Gateway", f"WeCom refused {what}: {exc.user_message}")


def _unknown_code(exc: SopflowError) -> bool:
    return getattr(exc, "errcode", None) == UNKNOWN_CONFIG_ERRCODE


# -- validation ------------------------------------------------------------------------------


def _check(field: str, value: Any) -> str | None:
    """``None`` if ``value`` is good for ``field``, else what to send instead."""
    if field == "source":
        if not isinstance(value, str) or not 0 < len(value) <= MAX_STATE:
            return f"give the source as 1–{MAX_STATE} characters (WeCom's limit on 'state')"
    elif field == "staff":
        if (
            not isinstance(value, list)
            or not 0 < len(value) <= MAX_STAFF
            or not all(isinstance(s, str) and s for s in value)
        ):
            return f"list 1–{MAX_STAFF} staff member userids who receive the customers"
        if len(set(value)) != len(value):
            return "list each staff member once"
    elif field == "remark" and (not isinstance(value, str) or len(value) > MAX_REMARK):
        return f"a remark is at most {MAX_REMARK} characters"
    return None


def _body(request: InboundRequest) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        return None


def _validate(raw: Any) -> tuple[dict[str, Any], InboundResponse | None]:
    if not isinstance(raw, dict):
        return {}, problem(400, "Bad Request", "send a JSON object: {source, staff, remark}")
    data = {"source": raw.get("source"), "staff": raw.get("staff"), "remark": raw.get("remark", "")}
    for field in FIELDS:
        detail = _check(field, data[field])
        if detail:
            return {}, _invalid(field, detail)
    return data, None


def _validate_changes(raw: Any) -> tuple[dict[str, Any], InboundResponse | None]:
    if not isinstance(raw, dict):
        return {}, problem(400, "Bad Request", "send a JSON object with any of: source, staff, remark")
    for key in raw:
        if key not in FIELDS:
            return {}, _invalid(key, f"'{key}' cannot be changed; send any of: source, staff, remark")
    if not raw:
        return {}, problem(422, "Unprocessable Entity", "send at least one of: source, staff, remark")
    for field, value in raw.items():
        detail = _check(field, value)
        if detail:
            return {}, _invalid(field, detail)
    return dict(raw), None


# -- views ----------------------------------------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def _view(way: Mapping[str, Any], window: tuple[int, int] | None = None) -> dict[str, Any]:
    """A WeCom contact way as the routes show it.  WeCom never says when a way was
    made: ``created_between`` is the moment (twice) for a code made here, the list
    window it was found in for an adopted one."""
    return {
        "config_id": way.get("config_id"),
        "source": way.get("state") or None,
        "staff": list(way.get("user") or []),
        "remark": way.get("remark") or "",
        "qr_code": way.get("qr_code") or None,
        "multi_person": way.get("type") == 2,
        "created_between": [_iso(window[0]), _iso(window[1])] if window else None,
    }


def _row_view(row: Any) -> dict[str, Any]:
    way = {
        "config_id": row.config_id,
        "state": row.source,
        "user": row.staff,
        "remark": row.remark,
        "qr_code": row.qr_code,
        "type": 2 if row.multi_person else 1,
    }
    return _view(way, (row.created_from, row.created_to))


def _decode_cursor(raw: str) -> tuple[int, Any] | None:
    try:
        first, second = json.loads(base64.urlsafe_b64decode(raw.encode() + b"==").decode())
        if isinstance(first, int) and isinstance(second, int | str):
            return first, second
    except (ValueError, TypeError):
        pass
    return None


def _encode_cursor(first: int, second: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps([first, second]).encode()).decode().rstrip("=")


# -- the table ---------------------------------------------------------------------------------------


def _scope(account: Any) -> tuple[Any, ...]:
    table = store.live_codes
    return (table.c.tenant_id == account.tenant_id, table.c.account_id == account.id)


def save_code(tx: Any, account: Any, way: Mapping[str, Any], window: tuple[int, int] | None) -> str:
    """Insert or update the row of one WeCom contact way; ``"adopted"``,
    ``"updated"`` or ``"unchanged"``.  ``window`` is kept from the first save."""
    table = store.live_codes
    values = {
        "source": way.get("state") or None,
        "staff": list(way.get("user") or []),
        "remark": str(way.get("remark") or ""),
        "qr_code": way.get("qr_code") or None,
        "multi_person": way.get("type") == 2,
    }
    where = (*_scope(account), table.c.config_id == str(way["config_id"]))
    found = tx.connection.execute(sa.select(*(table.c[k] for k in values)).where(*where)).first()
    if found is None:
        start, end = window or (0, 0)
        tx.connection.execute(
            table.insert().values(
                tenant_id=account.tenant_id,
                account_id=account.id,
                config_id=str(way["config_id"]),
                created_from=start,
                created_to=end,
                **values,
            )
        )
        return "adopted"
    if dict(found._mapping) == values:
        return "unchanged"
    tx.connection.execute(table.update().where(*where).values(**values))
    return "updated"


def _forget_code(tx: Any, account: Any, config_id: str) -> None:
    table = store.live_codes
    tx.connection.execute(table.delete().where(*_scope(account), table.c.config_id == config_id))


# -- routes ----------------------------------------------------------------------------------------


def live_codes(request: InboundRequest, host: Host) -> InboundResponse:
    """``/live-codes``: GET lists, POST creates."""
    if request.method == "GET":
        return list_live_codes(request, host)
    return create_live_code(request, host)


def live_code(request: InboundRequest, host: Host) -> InboundResponse:
    """``/live-codes/{config_id}``: PATCH changes, DELETE deletes."""
    if request.method == "PATCH":
        return update_live_code(request, host)
    return delete_live_code(request, host)


def list_live_codes(request: InboundRequest, host: Host) -> InboundResponse:
    """The account's codes from the plugin's table, newest first (no WeCom call)."""
    account, error = account_for(request, host)
    if error:
        return error
    try:
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        limit = 0
    if not 0 < limit <= MAX_LIMIT:
        return _invalid("limit", f"use 1 to {MAX_LIMIT}")
    table = store.live_codes
    query = sa.select(table).where(*_scope(account))
    if request.query.get("cursor"):
        position = _decode_cursor(request.query["cursor"])
        if position is None or not isinstance(position[1], int):
            return _invalid("cursor", "not a cursor from a previous page; omit it to start over")
        created_to, row_id = position
        query = query.where(
            sa.or_(
                table.c.created_to < created_to,
                sa.and_(table.c.created_to == created_to, table.c.id < row_id),
            )
        )
    query = query.order_by(table.c.created_to.desc(), table.c.id.desc()).limit(limit + 1)
    with host.transaction(account.tenant_id) as tx:
        rows = list(tx.connection.execute(query))
    more, rows = len(rows) > limit, rows[:limit]
    next_cursor = _encode_cursor(rows[-1].created_to, rows[-1].id) if more else None
    return json_response(200, {"items": [_row_view(r) for r in rows], "next_cursor": next_cursor})


def walk_contact_ways(client: Any, now: int) -> list[tuple[str, tuple[int, int]]]:
    """Every contact way WeCom lists, newest window first, with the window it is in:
    ``list_contact_way`` walked back in 90-day windows to 2021-07-10."""
    end, wecom_cursor = now, ""
    found: list[tuple[str, tuple[int, int]]] = []
    while end >= LIST_EPOCH:
        start = max(end - LIST_WINDOW + 1, LIST_EPOCH)
        page = client.list_contact_way(start, end, wecom_cursor, MAX_LIMIT)
        found += [(w["config_id"], (start, end)) for w in page.get("contact_way", [])]
        wecom_cursor = str(page.get("next_cursor") or "")
        if not wecom_cursor:
            end = start - 1  # the window is done: the next one ends just before it
    return found


def sync_live_codes(host: Host, account: Any) -> dict[str, int]:
    """Make the table match WeCom: adopt codes made elsewhere (the console), update
    changed ones, drop the ones WeCom no longer knows.  Raises ``SopflowError``."""
    client = account_channel(account).client
    ways = []
    for config_id, window in walk_contact_ways(client, int(host.now().timestamp())):
        try:
            ways.append((client.get_contact_way(config_id), window))
        except SopflowError as exc:
            if not _unknown_code(exc):
                raise  # deleted since it was listed: leave it out
    counts = {"adopted": 0, "updated": 0, "unchanged": 0, "removed": 0}
    table = store.live_codes
    with host.transaction(account.tenant_id) as tx:
        for way, window in ways:
            counts[save_code(tx, account, way, window)] += 1
        listed = {str(way["config_id"]) for way, _ in ways}
        stored = set(tx.connection.scalars(sa.select(table.c.config_id).where(*_scope(account))))
        for config_id in sorted(stored - listed):
            _forget_code(tx, account, config_id)
            counts["removed"] += 1
    return counts


def sync_route(request: InboundRequest, host: Host) -> InboundResponse:
    """``POST /live-codes/sync``: adopt the codes made in the WeCom console."""
    account, error = account_for(request, host)
    if error:
        return error
    try:
        counts = sync_live_codes(host, account)
    except SopflowError as exc:
        return _wecom_failed(exc, "the contact way list")
    return json_response(200, counts)


def create_live_code(request: InboundRequest, host: Host) -> InboundResponse:
    account, error = account_for(request, host)
    if error:
        return error
    data, error = _validate(_body(request))
    if error:
        return error
    try:
        channel = account_channel(account)
        way = channel.client.add_contact_way(
            type=1 if len(data["staff"]) == 1 else 2,
            scene=2,
            state=data["source"],
            user=data["staff"],
            remark=data["remark"],
            skip_verify=True,
        )
    except SopflowError as exc:
        return _wecom_failed(exc, "the contact way")
    made = int(host.now().timestamp())
    row = {
        "config_id": way["config_id"],
        "qr_code": way.get("qr_code"),
        "state": data["source"],
        "user": data["staff"],
        "remark": data["remark"],
        "type": 1 if len(data["staff"]) == 1 else 2,
    }
    with host.transaction(account.tenant_id) as tx:
        save_code(tx, account, row, (made, made))
    body = {"config_id": way["config_id"], "qr_code": way.get("qr_code"), "source": data["source"]}
    return json_response(201, body)


def update_live_code(request: InboundRequest, host: Host) -> InboundResponse:
    """Change source, staff or remark.  WeCom's ``update_contact_way`` gets every
    setting the plugin manages (read first), so nothing is cleared by omission."""
    account, error = account_for(request, host)
    if error:
        return error
    changes, error = _validate_changes(_body(request))
    if error:
        return error
    config_id = request.path_params["config_id"]
    client = account_channel(account).client
    try:
        way = dict(client.get_contact_way(config_id))
    except SopflowError as exc:
        if _unknown_code(exc):
            with host.transaction(account.tenant_id) as tx:
                _forget_code(tx, account, config_id)
            return problem(404, "Not Found", f"WeCom does not know that live code: {exc.user_message}")
        return _wecom_failed(exc, "the contact way")
    if way.get("type") == 1 and "staff" in changes and len(changes["staff"]) != 1:
        return _invalid(
            "staff",
            "this is a single-person code: give exactly one staff member, "
            "or create a new code for several (WeCom cannot change a code's type)",
        )
    way.update(
        {
            k: v
            for k, v in (
                ("state", changes.get("source")),
                ("user", changes.get("staff")),
                ("remark", changes.get("remark")),
            )
            if v is not None
        }
    )
    update: dict[str, Any] = {
        "remark": way.get("remark", ""),
        "skip_verify": way.get("skip_verify", True),
        "state": way.get("state", ""),
        "user": list(way.get("user") or []),
    }
    if way.get("party"):
        update["party"] = list(way["party"])
    if way.get("scene") == 1 and way.get("style") is not None:
        update["style"] = way["style"]
    try:
        client.update_contact_way(config_id, **update)
    except SopflowError as exc:
        return _wecom_failed(exc, "the change")
    with host.transaction(account.tenant_id) as tx:
        save_code(tx, account, way, None)
        window = tx.connection.execute(
            sa.select(store.live_codes.c.created_from, store.live_codes.c.created_to).where(
                *_scope(account), store.live_codes.c.config_id == config_id
            )
        ).first()
    return json_response(200, _view(way, tuple(window) if window else None))


def delete_live_code(request: InboundRequest, host: Host) -> InboundResponse:
    account, error = account_for(request, host)
    if error:
        return error
    config_id = request.path_params["config_id"]
    try:
        account_channel(account).client.del_contact_way(config_id)
    except SopflowError as exc:
        if not _unknown_code(exc):
            return _wecom_failed(exc, "the deletion")
        with host.transaction(account.tenant_id) as tx:
            _forget_code(tx, account, config_id)
        return problem(404, "Not Found", f"WeCom does not know that live code: {exc.user_message}")
    with host.transaction(account.tenant_id) as tx:
        _forget_code(tx, account, config_id)
    return InboundResponse(204, b"", "application/json")
