"""Customers handed from one member to another: 在职继承 (on-job) and 离职继承 (resigned).

A transfer is one row per customer in ``wecom_transfers``, moved along a small
state machine so that a crash anywhere loses nothing and calls nothing twice:

- ``planned``: written (one transaction) before WeCom is called;
- ``started``: WeCom answered ``errcode`` 0 for the customer — "taken over
  automatically after 24 hours", not done — or 40129 (a handover is under way:
  ours, when the process died before it could record the answer);
- ``rejected``: any other per-customer ``errcode`` (84061 not the member's
  customer, 40128 handed over twice in 90 days, 40130 same member), or a result
  status 5 (WeCom has no record of it);
- ``done`` / ``refused`` / ``limit``: ``transfer_result`` status 1 / 3 / 4.

Starting calls ``transfer_customer`` (or ``resigned/transfer_customer``) with at
most 100 customers.  Finishing reads ``transfer_result`` (cursor paging) for each
(giver, taker) pair with started rows; a customer WeCom reports taken over becomes
one ``customer.transferred`` event (core moves the owner, the relation, and
re-addresses the touches waiting for the giver) written in the same transaction
as the row's ``done``.  ``finish_job`` runs periodically and on the callbacks
that tell an end (``transfer_fail``, ``del_external_contact`` with
``DELETE_BY_TRANSFER``); it also starts rows a crash left ``planned``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import ChannelAccountView, Host, Identity, IngestEvent, JobSpec, SopflowError

from sopflow_wecom.channel import account_channel
from sopflow_wecom.client import WeComClient
from sopflow_wecom.events import CHANNEL
from sopflow_wecom.store import transfers

log = logging.getLogger("sopflow_wecom.transfers")

START_JOB = "wecom.transfer_start"
FINISH_JOB = "wecom.transfer_finish"
#: how often the finishing job looks at WeCom's results (its callbacks also trigger it)
FINISH_EVERY_SECONDS = 600
MAX_CUSTOMERS_PER_CALL = 100
MAX_SUCCESS_MSG = 200
KINDS = ("onjob", "resigned")
#: per-customer errcodes that mean the handover is under way
STARTED_ERRCODES = frozenset({0, 40129})
#: ``transfer_result`` status → the row's final state
RESULT_STATES = {1: "done", 3: "refused", 4: "limit", 5: "rejected"}
OPEN_STATES = ("planned", "started")
#: what a rejection's errcode means, for the API's answer
ERRCODE_REASONS = {
    84061: "not a customer of the handover member",
    40128: "handed over twice in 90 days already (WeCom's limit)",
    40129: "a handover of this customer is already under way",
    40130: "the handover and takeover members are the same",
}
_PATHS = {
    "onjob": ("externalcontact/transfer_customer", "externalcontact/transfer_result"),
    "resigned": ("externalcontact/resigned/transfer_customer", "externalcontact/resigned/transfer_result"),
}


def transfer_key(row_id: int) -> str:
    return f"wecom:transfer:{row_id}"


def reason(state: str, errcode: int | None) -> str | None:
    """Why a row ended as it did, in words."""
    if state == "refused":
        return "the customer refused the handover"
    if state == "limit":
        return "the takeover member has reached their customer limit"
    if state == "rejected":
        return ERRCODE_REASONS.get(errcode or 0, f"WeCom answered errcode {errcode}")
    return None


# -- who would move ---------------------------------------------------------------------------


def unassigned(client: WeComClient, handover: str | None = None) -> Iterator[Mapping[str, Any]]:
    """``get_unassigned_list``: the customers of members who left, not handed to anyone
    yet (``handover_userid``, ``external_userid``, ``dimission_time``), every page."""
    cursor = ""
    for _ in range(10_000):  # bounded: 1000 a page
        page = client.call(
            "POST", "externalcontact/get_unassigned_list", json={"cursor": cursor, "page_size": 1000}
        )
        for row in page.get("info") or []:
            if handover is None or row.get("handover_userid") == handover:
                yield row
        cursor = str(page.get("next_cursor") or "")
        if page.get("is_last") or not cursor:
            return


def candidates(client: WeComClient, kind: str, handover: str) -> list[str]:
    """The handover member's customers WeCom would hand over."""
    if kind == "onjob":
        return sorted(client.list_external_contacts(handover))
    return sorted({str(r["external_userid"]) for r in unassigned(client, handover)})


def open_rows(conn: Any, account_id: int, external_userids: Sequence[str]) -> set[str]:
    """Which of the customers already have a transfer under way in sopflow."""
    if not external_userids:
        return set()
    return set(
        conn.scalars(
            sa.select(transfers.c.external_userid).where(
                transfers.c.account_id == account_id,
                transfers.c.state.in_(OPEN_STATES),
                transfers.c.external_userid.in_(list(external_userids)),
            )
        )
    )


def plan(
    host: Host,
    account: ChannelAccountView,
    kind: str,
    handover: str,
    takeover: str,
    external_userids: Sequence[str],
    success_msg: str | None,
) -> list[str]:
    """Write ``planned`` rows for the customers not already in a transfer; returns the
    ones planned."""
    now = int(host.now().timestamp())
    with host.transaction(account.tenant_id) as tx:
        busy = open_rows(tx.connection, account.id, external_userids)
        planned = [e for e in dict.fromkeys(external_userids) if e not in busy]
        if planned:
            tx.connection.execute(
                transfers.insert(),
                [
                    {
                        "tenant_id": account.tenant_id,
                        "account_id": account.id,
                        "kind": kind,
                        "handover_userid": handover,
                        "takeover_userid": takeover,
                        "external_userid": ext,
                        "success_msg": success_msg,
                        "state": "planned",
                        "requested_at": now,
                    }
                    for ext in planned
                ],
            )
    return planned


# -- starting ---------------------------------------------------------------------------------


def start_planned(host: Host, account: ChannelAccountView) -> int:
    """Call WeCom for every ``planned`` row of the account (≤100 a call); returns the
    number of calls made.  Each answer is recorded in its own transaction."""
    client = account_channel(account).client
    with host.transaction(account.tenant_id) as tx:
        rows = tx.connection.execute(
            sa.select(transfers)
            .where(transfers.c.account_id == account.id, transfers.c.state == "planned")
            .order_by(transfers.c.id)
        ).all()
    groups: dict[tuple[str, str, str, str | None], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.kind, row.handover_userid, row.takeover_userid, row.success_msg), []).append(
            row
        )
    calls = 0
    for (kind, handover, takeover, msg), group in groups.items():
        for i in range(0, len(group), MAX_CUSTOMERS_PER_CALL):
            chunk = group[i : i + MAX_CUSTOMERS_PER_CALL]
            body = {
                "handover_userid": handover,
                "takeover_userid": takeover,
                "external_userid": [r.external_userid for r in chunk],
                "transfer_success_msg": msg if kind == "onjob" else None,
            }
            answer = client.call("POST", _PATHS[kind][0], json={k: v for k, v in body.items() if v})
            calls += 1
            _record_start(host, account, chunk, answer)
    return calls


def _record_start(
    host: Host, account: ChannelAccountView, chunk: Sequence[Any], answer: Mapping[str, Any]
) -> None:
    codes = {str(c.get("external_userid")): int(c.get("errcode", 0)) for c in answer.get("customer") or []}
    now = int(host.now().timestamp())
    with host.transaction(account.tenant_id) as tx:
        for row in chunk:
            code = codes.get(row.external_userid, 0)
            started = code in STARTED_ERRCODES
            tx.connection.execute(
                transfers.update()
                .where(transfers.c.id == row.id, transfers.c.state == "planned")
                .values(
                    state="started" if started else "rejected",
                    errcode=code,
                    started_at=now if started else None,
                    finished_at=None if started else now,
                )
            )


# -- finishing -------------------------------------------------------------------------------


def _results(client: WeComClient, kind: str, handover: str, takeover: str) -> dict[str, int]:
    """external_userid → ``transfer_result`` status, every page."""
    out: dict[str, int] = {}
    cursor = ""
    for _ in range(10_000):
        body = {"handover_userid": handover, "takeover_userid": takeover, "cursor": cursor or None}
        page = client.call("POST", _PATHS[kind][1], json={k: v for k, v in body.items() if v})
        for row in page.get("customer") or []:
            out[str(row["external_userid"])] = int(row.get("status", 2))
        cursor = str(page.get("next_cursor") or "")
        if not cursor:
            return out
    return out


def finish_started(
    host: Host, account: ChannelAccountView, external_userid: str | None = None
) -> dict[str, int]:
    """Record what WeCom says of every ``started`` row (of one customer, after a
    callback named them); returns counts by new state.  A customer taken over is
    one ``customer.transferred`` event, in the same transaction as its row's
    ``done`` (so neither is lost without the other)."""
    client = account_channel(account).client
    where = [transfers.c.account_id == account.id, transfers.c.state == "started"]
    if external_userid is not None:
        where.append(transfers.c.external_userid == external_userid)
    with host.transaction(account.tenant_id) as tx:
        rows = tx.connection.execute(sa.select(transfers).where(*where).order_by(transfers.c.id)).all()
    pairs: dict[tuple[str, str, str], list[Any]] = {}
    for row in rows:
        pairs.setdefault((row.kind, row.handover_userid, row.takeover_userid), []).append(row)
    counts: dict[str, int] = {}
    for (kind, handover, takeover), group in pairs.items():
        statuses = _results(client, kind, handover, takeover)
        ended = [
            (r, RESULT_STATES[statuses[r.external_userid]])
            for r in group
            if statuses.get(r.external_userid) in RESULT_STATES
        ]
        if not ended:
            continue
        now = int(host.now().timestamp())
        with host.transaction(account.tenant_id) as tx:
            events = [_transferred(account, r) for r, state in ended if state == "done"]
            if events:
                tx.ingest(events)
            for r, state in ended:
                tx.connection.execute(
                    transfers.update()
                    .where(transfers.c.id == r.id, transfers.c.state == "started")
                    .values(state=state, finished_at=now)
                )
                counts[state] = counts.get(state, 0) + 1
    return counts


def _transferred(account: ChannelAccountView, row: Any) -> IngestEvent:
    return IngestEvent(
        type="customer.transferred",
        identity=Identity(
            channel=CHANNEL, external_id=row.external_userid, staff_external_id=row.takeover_userid
        ),
        idempotency_key=transfer_key(row.id),
        payload={
            "from_staff_external_id": row.handover_userid,
            "kind": row.kind,
            "corp_id": str(account.config.get("corp_id") or ""),
        },
    )


def advance(host: Host, account: ChannelAccountView) -> dict[str, int]:
    """Start what a crash left planned, then record what has ended."""
    start_planned(host, account)
    return finish_started(host, account)


def start_job(host: Host, account_id: int) -> None:
    account = host.channel_account(account_id)
    if account is not None and account.channel == CHANNEL:
        start_planned(host, account)


def finish_job(host: Host, account_id: int | None = None, external_userid: str | None = None) -> None:
    """Periodically: every WeCom account with a transfer under way (one account's
    failure does not stop the others).  After a callback: the one customer it
    names, so the callback is answered within WeCom's 5 seconds."""
    if account_id and external_userid:
        account = host.channel_account(account_id)
        if account is not None and account.channel == CHANNEL:
            finish_started(host, account, external_userid)
        return
    accounts = [host.channel_account(account_id)] if account_id else host.channel_accounts(CHANNEL)
    for account in accounts:
        if account is None or account.channel != CHANNEL:
            continue
        try:
            with host.transaction(account.tenant_id) as tx:
                busy = tx.connection.scalar(
                    sa.select(sa.func.count())
                    .select_from(transfers)
                    .where(transfers.c.account_id == account.id, transfers.c.state.in_(OPEN_STATES))
                )
            if busy:
                advance(host, account)
        except SopflowError as exc:
            log.warning("wecom transfers of account %s not advanced: %s", account.id, exc)


def job_specs() -> list[JobSpec]:
    return [
        JobSpec(
            name=START_JOB,
            fn=start_job,
            description="Call WeCom for the planned customer transfers of a WeCom account",
        ),
        JobSpec(
            name=FINISH_JOB,
            fn=finish_job,
            every_seconds=FINISH_EVERY_SECONDS,
            description="Read WeCom's transfer results; customers taken over become customer.transferred "
            "events (the owner moves); refusals and limits are recorded per customer",
        ),
    ]
