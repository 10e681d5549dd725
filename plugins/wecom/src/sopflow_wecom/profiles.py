"""Fill in a customer's profile: WeCom's ``add_external_contact`` and
``edit_external_contact`` callbacks carry ids only, so the name (and gender,
corp name) and the corp tags come from ``externalcontact/get``, fetched as a
job so the callback answers fast when a broker runs jobs in the background."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sopflow_sdk import Host, IngestEvent, JobSpec, Relation
from sopflow_sdk.specs import Identity

from sopflow_wecom import tags
from sopflow_wecom.channel import account_channel
from sopflow_wecom.events import CHANNEL

JOB = "wecom.fetch_profile"


def fetch_profile(
    host: Host,
    account_id: int,
    external_userid: str,
    staff_userid: str | None = None,
    event_key: str = "",
) -> None:
    """Ingest the customer's name (``customer.updated`` with ``display_name``) and corp
    tags (see ``tags.py``).  ``event_key`` is the causing callback's idempotency key."""
    account = host.channel_account(account_id)
    if account is None:
        return  # the account was removed or the plugin disabled for its tenant since
    client = account_channel(account).client
    answer = client.get_external_contact(external_userid)
    contact = answer["external_contact"]
    follow_users = list(answer.get("follow_user") or [])
    cursor = answer.get("next_cursor") or ""
    while cursor:  # more than 500 members follow the customer
        page = client.get_external_contact(external_userid, cursor)
        follow_users += page.get("follow_user") or []
        cursor = page.get("next_cursor") or ""
    corp_id = str(account.config.get("corp_id") or "")
    identity = Identity(CHANNEL, external_userid, staff_userid)
    events: list[IngestEvent] = []
    name = str(contact.get("name") or "")
    rels, shared = relations(follow_users), shared_keys(contact, follow_users)
    if name or rels or shared:
        payload: dict[str, Any] = {
            "profile_from": "wecom",
            **{k: contact[k] for k in ("gender", "corp_name", "type") if contact.get(k) not in (None, "")},
        }
        # One event per distinct profile: a refetch of an unchanged profile is a duplicate.
        material = [*sorted(payload.items()), name, rels, shared]
        digest = hashlib.sha256(repr(material).encode()).hexdigest()[:16]
        events.append(
            IngestEvent(
                type="customer.updated",
                identity=identity,
                idempotency_key=f"wecom:profile:{corp_id}:{external_userid}:{digest}",
                payload=payload,
                display_name=name or None,
                shared_identities=shared,
                relations=rels,
            )
        )
    # Without access to the tag library: add the customer's corp tags, remove none.
    library = tags.library_readable(host, account) or {}
    current = tags.corp_tag_names(follow_users)
    events += tags.tag_state_events(corp_id, identity, current, library.values(), event_key)
    if events:
        host.ingest(account.tenant_id, events)


def relations(follow_users: list[dict[str, Any]]) -> tuple[Relation, ...]:
    """Every member who added the customer (``follow_user``), each with their own
    ``createtime``, ``state`` (the live code; else ``add_way``, document 92114's
    code for how they were added) and ``remark``."""
    out = []
    for f in follow_users:
        if not f.get("userid"):
            continue
        created = f.get("createtime")
        added_at = datetime.fromtimestamp(int(created), tz=UTC).isoformat() if created else None
        add_way = f.get("add_way")
        source = str(f.get("state") or "") or (f"add_way:{add_way}" if add_way not in (None, "") else None)
        out.append(Relation(str(f["userid"]), added_at, source, str(f.get("remark") or "") or None))
    return tuple(out)


def shared_keys(contact: dict[str, Any], follow_users: list[dict[str, Any]]) -> tuple[Identity, ...]:
    """The keys that name this person on other channels: WeChat's ``unionid`` (given
    when the corp is bound to an open platform) and the phones members noted
    (``remark_mobiles``)."""
    keys = [Identity("unionid", str(contact["unionid"]))] if contact.get("unionid") else []
    phones = sorted({str(m) for f in follow_users for m in f.get("remark_mobiles") or () if m})
    return tuple(keys + [Identity("phone", p) for p in phones])


def job_spec() -> JobSpec:
    return JobSpec(
        name=JOB,
        fn=fetch_profile,
        description="Fetch an external contact's name, profile and corp tags (externalcontact/get)",
    )
