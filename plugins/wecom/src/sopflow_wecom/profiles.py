"""Fill in a customer's profile: WeCom's ``add_external_contact`` and
``edit_external_contact`` callbacks carry ids only, so the name (and gender,
corp name) and the corp tags come from ``externalcontact/get``, fetched as a
job so the callback answers fast when a broker runs jobs in the background."""

from __future__ import annotations

import hashlib
from typing import Any

from sopflow_sdk import Host, IngestEvent, JobSpec
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
    if name:
        payload: dict[str, Any] = {
            "profile_from": "wecom",
            **{k: contact[k] for k in ("gender", "corp_name", "type") if contact.get(k) not in (None, "")},
        }
        # One event per distinct profile: a refetch of an unchanged profile is a duplicate.
        digest = hashlib.sha256(repr([*sorted(payload.items()), name]).encode()).hexdigest()[:16]
        events.append(
            IngestEvent(
                type="customer.updated",
                identity=identity,
                idempotency_key=f"wecom:profile:{corp_id}:{external_userid}:{digest}",
                payload=payload,
                display_name=name,
            )
        )
    # Without access to the tag library: add the customer's corp tags, remove none.
    library = tags.library_readable(host, account) or {}
    current = tags.corp_tag_names(follow_users)
    events += tags.tag_state_events(corp_id, identity, current, library.values(), event_key)
    if events:
        host.ingest(account.tenant_id, events)


def job_spec() -> JobSpec:
    return JobSpec(
        name=JOB,
        fn=fetch_profile,
        description="Fetch an external contact's name, profile and corp tags (externalcontact/get)",
    )
