"""Fill in a new customer's profile: WeCom's ``add_external_contact`` callback
carries ids only, so the name (and gender, corp name) comes from
``externalcontact/get``, fetched as a job so the callback answers fast when a
broker runs jobs in the background."""

from __future__ import annotations

import hashlib
from typing import Any

from sopflow_sdk import Host, IngestEvent, JobSpec
from sopflow_sdk.specs import Identity

from sopflow_wecom.channel import account_channel
from sopflow_wecom.events import CHANNEL

JOB = "wecom.fetch_profile"


def fetch_profile(host: Host, account_id: int, external_userid: str, staff_userid: str | None = None) -> None:
    account = host.channel_account(account_id)
    if account is None:
        return  # the account was removed or the plugin disabled for its tenant since
    contact = account_channel(account).client.get_external_contact(external_userid)["external_contact"]
    name = str(contact.get("name") or "")
    if not name:
        return
    payload: dict[str, Any] = {
        "profile_from": "wecom",
        **{k: contact[k] for k in ("gender", "corp_name", "type") if contact.get(k) not in (None, "")},
    }
    # One event per distinct profile: a refetch of an unchanged profile is a duplicate.
    digest = hashlib.sha256(repr([*sorted(payload.items()), name]).encode()).hexdigest()[:16]
    host.ingest(
        account.tenant_id,
        [
            IngestEvent(
                type="customer.updated",
                identity=Identity(CHANNEL, external_userid, staff_userid),
                idempotency_key=f"wecom:profile:{account.config.get('corp_id')}:{external_userid}:{digest}",
                payload=payload,
                display_name=name,
            )
        ],
    )


def job_spec() -> JobSpec:
    return JobSpec(
        name=JOB,
        fn=fetch_profile,
        description="Fetch a new external contact's name and profile from WeCom (externalcontact/get)",
    )
