"""The initial import: every customer the corp's members already have becomes a
sopflow customer, without anything being sent.

Walks ``externalcontact/get_follow_user_list`` (the members with customer
contact), then ``externalcontact/batch/get_by_user`` for up to 100 members at a
time, 100 items a page, following ``next_cursor``.  Each item is one (customer,
member) relationship and becomes one ``customer.imported`` event:

- identity ``wecom`` / external_userid / staff = the member's userid;
- ``display_name`` = the WeCom name, payload ``gender``, ``corp_name``, ``type``
  (as ``profiles.py`` does) plus the member's ``remark``, ``description``,
  ``add_way`` and ``state``;
- ``source`` = the ``state`` of the live code the customer came through, if any;
- ``tags_add`` = the names of the member's corp tags on the customer (``tag_id``
  mapped through ``get_corp_tag_list``; strategy-group ids it does not list are left out);
- idempotency key ``wecom:import:`` + sha256(corp, external_userid, userid), so a
  re-run adds nothing and only new relationships are imported.

**Why ``customer.imported`` and not ``customer.added``:** core enrols
``new_customer`` SOPs only on ``customer.added``, and the welcome touchpoint needs
the add callback's 20-second ``WelcomeCode``.  An imported customer did not just
arrive, so it must not get a welcome message or a new-customer SOP.  Like any
change of customer data, the event is still evaluated: nurture SOPs and journeys
whose rules match the imported customer (its tags, source, fields) do pick it up.

The run is a plugin job (``wecom.import_contacts``) so it can go to a worker.
Progress lives in this process's memory (not yet in plugin state): it is
visible to ``GET .../import`` when the job runs inline or in an in-process worker
(``sopflow up``), not across separate worker processes.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sopflow_sdk import (
    ChannelAccountView,
    FatalError,
    Host,
    Identity,
    InboundRequest,
    InboundResponse,
    IngestEvent,
    JobSpec,
    SopflowError,
)

from sopflow_wecom.channel import account_channel
from sopflow_wecom.client import MAX_BATCH_LIMIT, MAX_BATCH_USERS, WeComClient
from sopflow_wecom.events import CHANNEL
from sopflow_wecom.live_codes import account_for, json_response, problem
from sopflow_wecom.profiles import shared_keys

JOB = "wecom.import_contacts"
EVENT_TYPE = "customer.imported"
#: core's limits: tags per event and characters per tag, display name, source.
MAX_TAGS, MAX_TAG, MAX_NAME, MAX_SOURCE = 200, 100, 200, 100

Progress = dict[str, Any]
ProgressCallback = Callable[[Progress], None]

#: (tenant id, account id, corp id) → progress; the corp id guards against a reused account id.
ProgressKey = tuple[int, int, str]
_progress: dict[ProgressKey, Progress] = {}
_running: set[ProgressKey] = set()
_guard = threading.Lock()


def import_key(corp_id: str, external_userid: str, staff_userid: str) -> str:
    """One key per (corp, customer, member): the same relationship is imported once."""
    material = "\x1f".join((corp_id, external_userid, staff_userid))
    return "wecom:import:" + hashlib.sha256(material.encode("utf-8")).hexdigest()


def _key(account: ChannelAccountView) -> ProgressKey:
    return (account.tenant_id, account.id, str(account.config.get("corp_id")))


def progress_of(account: ChannelAccountView) -> Progress | None:
    """The last known progress of the account's import in this process, if any."""
    with _guard:
        found = _progress.get(_key(account))
        return dict(found) if found is not None else None


def clear_progress() -> None:
    """Forget every finished import's progress (tests run many apps in one process)."""
    with _guard:
        for key in set(_progress) - _running:
            del _progress[key]


def _new_progress(account_id: int, state: str) -> Progress:
    return {
        "account_id": account_id,
        "state": state,  # queued, running, done, failed
        "follow_users": None,
        "follow_users_done": 0,
        "pages": 0,
        "contacts_seen": 0,
        "customers_created": 0,
        "customers_updated": 0,
        "unchanged": 0,
        "started_at": None,
        "finished_at": None,
        "error": None,
    }


def _publish(key: ProgressKey, progress: Progress, callback: ProgressCallback | None) -> None:
    with _guard:
        _progress[key] = dict(progress)
    if callback is not None:
        callback(dict(progress))


def _corp_tag_names(client: WeComClient) -> dict[str, str]:
    """Corp tag id → name.  An app without access to the tag library imports no tags."""
    try:
        groups = client.get_corp_tag_list()
    except FatalError:
        return {}
    return {
        str(t["id"]): str(t["name"]).strip()
        for g in groups
        for t in g.get("tag", [])
        if t.get("id") and 0 < len(str(t.get("name") or "").strip()) <= MAX_TAG
    }


def contact_event(corp_id: str, item: Mapping[str, Any], tag_names: Mapping[str, str]) -> IngestEvent | None:
    """One ``batch/get_by_user`` item → one ``customer.imported`` event (``None`` if it
    lacks the ids)."""
    contact = item.get("external_contact") or {}
    follow = item.get("follow_info") or {}
    external_userid = str(contact.get("external_userid") or "")
    staff = str(follow.get("userid") or "")
    if not external_userid or not staff:
        return None
    state = str(follow.get("state") or "")
    payload = {
        "corp_id": corp_id,
        "staff_userid": staff,
        "state": state,
        "add_way": follow.get("add_way"),
        "remark": follow.get("remark"),
        "description": follow.get("description"),
        "remark_corp_name": follow.get("remark_corp_name"),
        "profile_from": "wecom",
        **{k: contact.get(k) for k in ("gender", "corp_name", "type")},
    }
    tags = [tag_names[t] for t in follow.get("tag_id") or () if t in tag_names]
    created = follow.get("createtime")
    return IngestEvent(
        type=EVENT_TYPE,
        identity=Identity(channel=CHANNEL, external_id=external_userid, staff_external_id=staff),
        idempotency_key=import_key(corp_id, external_userid, staff),
        occurred_at=datetime.fromtimestamp(created, tz=UTC).isoformat() if isinstance(created, int) else None,
        payload={k: v for k, v in payload.items() if v not in (None, "", [])},
        display_name=str(contact.get("name") or "")[:MAX_NAME] or None,
        tags_add=tuple(dict.fromkeys(tags))[:MAX_TAGS],
        source=state[:MAX_SOURCE] or None,
        # unionid and the member's noted phones: the same person on another channel
        shared_identities=shared_keys(contact, [follow]),
    )


def run_import(host: Host, account_id: int, *, progress: ProgressCallback | None = None) -> Progress:
    """Import every follow user's customers of a WeCom channel account; returns the
    final progress.  ``progress`` is called after every page (for a CLI progress bar:
    ``follow_users_done`` of ``follow_users``, ``contacts_seen``, ...).  Re-runnable."""
    account = host.channel_account(account_id)
    if account is None or account.channel != CHANNEL:
        raise FatalError(
            f"no WeCom channel account {account_id} (or the wecom plugin is disabled for its tenant)"
        )
    key = _key(account)
    with _guard:
        if key in _running:
            raise FatalError(f"an import for WeCom account {account_id} is already running")
        _running.add(key)
    state = _new_progress(account_id, "running")
    state["started_at"] = host.now().isoformat()
    created: set[Any] = set()
    touched: set[Any] = set()
    try:
        _publish(key, state, progress)
        client = account_channel(account).client
        corp_id = str(account.config.get("corp_id"))
        users = client.get_follow_user_list()
        state["follow_users"] = len(users)
        _publish(key, state, progress)
        tag_names = _corp_tag_names(client) if users else {}
        for i in range(0, len(users), MAX_BATCH_USERS):
            chunk = users[i : i + MAX_BATCH_USERS]
            cursor = ""
            while True:
                page = client.batch_get_by_user(chunk, cursor, MAX_BATCH_LIMIT)
                items = page.get("external_contact_list") or []
                events = [e for e in (contact_event(corp_id, it, tag_names) for it in items) if e]
                outcomes = host.ingest(account.tenant_id, events) if events else []
                for outcome in outcomes:
                    if outcome.get("status") != "created":
                        state["unchanged"] += 1
                    elif outcome.get("customer_created"):
                        created.add(outcome.get("customer_id"))
                    else:
                        touched.add(outcome.get("customer_id"))
                state["pages"] += 1
                state["contacts_seen"] += len(items)
                state["customers_created"] = len(created)
                state["customers_updated"] = len(touched - created)
                cursor = str(page.get("next_cursor") or "")
                if not cursor:
                    break
                _publish(key, state, progress)
            state["follow_users_done"] += len(chunk)
            _publish(key, state, progress)
        state["state"] = "done"
    except BaseException as exc:
        state["state"] = "failed"
        state["error"] = exc.user_message if isinstance(exc, SopflowError) else type(exc).__name__
        raise
    finally:
        state["finished_at"] = host.now().isoformat()
        _publish(key, state, progress)
        with _guard:
            _running.discard(key)
    return dict(state)


def import_job(host: Host, account_id: int) -> None:
    run_import(host, account_id)


def job_spec() -> JobSpec:
    return JobSpec(
        name=JOB,
        fn=import_job,
        description="Import every WeCom customer of the members with customer contact "
        "(batch/get_by_user) as customer.imported events; re-runnable, sends nothing",
    )


def handle_import(request: InboundRequest, host: Host) -> InboundResponse:
    """``POST .../import`` starts an import (202 with its progress); ``GET`` reports it."""
    account, error = account_for(request, host)
    if error:
        return error
    if request.method == "GET":
        found = progress_of(account)
        if found is None:
            return problem(
                404, "Not Found", "no import has run for this account in this process; POST to start one"
            )
        return json_response(200, found)
    with _guard:
        running = _key(account) in _running
    if running:
        return problem(409, "Conflict", "an import for this account is running; follow it with GET")
    _publish(_key(account), _new_progress(account.id, "queued"), None)
    try:
        host.enqueue(JOB, account_id=account.id)  # without a broker this runs the import now
    except SopflowError as exc:
        return problem(502, "Bad Gateway", f"the import failed: {exc.user_message}")
    return json_response(202, progress_of(account))
