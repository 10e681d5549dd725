"""Corp tags (企业标签) synced both ways between WeCom and sopflow.

**WeCom → sopflow.** WeCom tags a customer per member (``follow_user[].tags[]``,
``type`` 1 = corp tag).  After an ``add_external_contact`` or
``edit_external_contact`` callback the profile job (``profiles.py``) reads the
customer with ``externalcontact/get`` and ingests one ``customer.updated`` event
(payload ``cause: "wecom_tags"``, ``tags_added``, ``tags_removed``) whose
``tags_add`` are the names of the corp tags any member has on the customer and
whose ``tags_remove`` are the other names of the corp tag library, so sopflow's
tag set reflects WeCom's corp tags without touching tags that are not corp tags.
A corp tag renamed or deleted in the console (``change_external_tag``) runs the
``wecom.resync_tags`` job, which walks every member's customers and corrects
the old name.

**sopflow → WeCom.** ``wecom.mark_tags`` marks tags added or removed in
sopflow on the customer in WeCom with ``externalcontact/mark_tag`` (by the
customer's member), for names that are corp tags; with ``create_missing_tags:
true`` in the account config, missing names are first created in a tag group
"sopflow".  WeCom sends no callback for changes made through its API, and
``push_request`` ignores events the plugin ingested itself, so nothing echoes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import ChannelAccountView, FatalError, Host, Identity, IngestEvent, JobSpec, SkippableError

from sopflow_wecom import store
from sopflow_wecom.channel import account_channel
from sopflow_wecom.client import MAX_BATCH_USERS, WeComClient
from sopflow_wecom.events import CHANNEL

log = logging.getLogger("sopflow_wecom")

MARK_JOB = "wecom.mark_tags"
RESYNC_JOB = "wecom.resync_tags"
#: the tag group missing tags are created in (``create_missing_tags: true``)
TAG_GROUP_NAME = "sopflow"
#: how long a corp tag library read is reused (seconds, by the host's clock); a
#: change in the console arrives as a change_external_tag callback, which drops
#: the cache at once, so this only bounds how long a missed callback can matter
LIBRARY_TTL = 3600.0
#: core's limits: tags per event, characters per tag
MAX_TAGS, MAX_TAG = 200, 100
#: the plugin's name: events it ingested carry it as their ``source``
PLUGIN = "wecom"


class TagLibrary:
    """The corp tag library of one account: id → name, read at most every ``LIBRARY_TTL`` s."""

    def __init__(self, names: Mapping[str, str], group_of: Mapping[str, str], read_at: float) -> None:
        self.names = dict(names)
        self.group_of = dict(group_of)  # tag id → group id
        self.read_at = read_at

    def ids(self) -> dict[str, str]:
        """Name → id (the first id when two groups hold the same name)."""
        out: dict[str, str] = {}
        for tag_id, name in self.names.items():
            out.setdefault(name, tag_id)
        return out


_libraries: dict[int, TagLibrary] = {}
_owners: dict[int, tuple[Any, Any]] = {}
_guard = threading.Lock()


def _usable(name: Any) -> str | None:
    text = str(name or "").strip()
    return text if 0 < len(text) <= MAX_TAG else None


def read_library(client: WeComClient, now: float) -> TagLibrary:
    names: dict[str, str] = {}
    group_of: dict[str, str] = {}
    for group in client.get_corp_tag_list():
        for tag in group.get("tag", []):
            name = _usable(tag.get("name"))
            if tag.get("id") and name and not tag.get("deleted"):
                names[str(tag["id"])] = name
                group_of[str(tag["id"])] = str(group.get("group_id") or "")
    return TagLibrary(names, group_of, now)


def library(host: Host, account: ChannelAccountView, *, fresh: bool = False) -> TagLibrary:
    """The account's corp tag library, cached for ``LIBRARY_TTL`` seconds.  Every
    read from WeCom is also remembered in ``wecom_corp_tags`` (``remember``)."""
    now = host.now().timestamp()
    # account ids repeat across databases (tests, a restored backup): the corp and
    # the API address say whose library a cached one is
    owner = (account.config.get("corp_id"), account.config.get("base_url"))
    with _guard:
        cached = _libraries.get(account.id)
        current = _owners.get(account.id) == owner
    if cached is not None and current and not fresh and 0 <= now - cached.read_at < LIBRARY_TTL:
        return cached
    found = read_library(account_channel(account).client, now)
    remember(host, account, found)
    with _guard:
        _owners[account.id] = owner
        _libraries[account.id] = found
    return found


def remember(host: Host, account: ChannelAccountView, found: TagLibrary) -> None:
    """Keep every id → name (and group) of ``found`` in the plugin's table.  Rows of
    tags no longer in the library stay: a delete callback needs the old name."""
    corp_id = str(account.config.get("corp_id") or "")
    table = store.corp_tags
    scope = (table.c.account_id == account.id, table.c.corp_id == corp_id)
    with host.transaction(account.tenant_id) as tx:
        known = {
            row.tag_id: (row.name, row.group_id)
            for row in tx.connection.execute(
                sa.select(table.c.tag_id, table.c.name, table.c.group_id).where(*scope)
            )
        }
        for tag_id, name in found.names.items():
            group_id = found.group_of.get(tag_id, "")
            values = {"name": name, "group_id": group_id, "seen_at": int(found.read_at)}
            if tag_id not in known:
                row = {
                    "account_id": account.id,
                    "corp_id": corp_id,
                    "tag_id": tag_id,
                    "tenant_id": account.tenant_id,
                }
                tx.connection.execute(table.insert().values(**row, **values))
            elif known[tag_id] != (name, group_id):
                tx.connection.execute(table.update().where(*scope, table.c.tag_id == tag_id).values(**values))


def forget(account_id: int) -> None:
    """Drop the cached library (the next read asks WeCom)."""
    with _guard:
        _libraries.pop(account_id, None)


def clear() -> None:
    """Forget the process's cached libraries, as a restart does (tests run many apps
    in one process).  The names remembered in the database stay."""
    with _guard:
        _libraries.clear()
        _owners.clear()


def known_names(host: Host, account: ChannelAccountView, tag_id: str, tag_type: str) -> list[str]:
    """The names last seen for a tag (``tag_type`` "tag") or for a group's tags, from
    the plugin's table: they outlive a restart and the tag's deletion in WeCom."""
    table = store.corp_tags
    column = table.c.tag_id if tag_type != "tag_group" else table.c.group_id
    query = sa.select(table.c.name).where(
        table.c.account_id == account.id,
        table.c.corp_id == str(account.config.get("corp_id") or ""),
        column == tag_id,
    )
    with host.transaction(account.tenant_id) as tx:
        return sorted(set(tx.connection.scalars(query)))


# -- WeCom → sopflow ---------------------------------------------------------------------------


def corp_tag_names(follow_users: Iterable[Mapping[str, Any]]) -> set[str]:
    """Names of the corp tags (``type`` 1) members have on the customer (``externalcontact/get``)."""
    return {
        name
        for follow in follow_users
        for tag in follow.get("tags") or ()
        if int(tag.get("type") or 0) == 1 and (name := _usable(tag.get("tag_name")))
    }


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)] or [[]]


def tag_state_events(
    corp_id: str,
    identity: Identity,
    current: Iterable[str],
    library_names: Iterable[str],
    cause_key: str,
    *,
    remove: Iterable[str] = (),
) -> list[IngestEvent]:
    """``customer.updated`` events that make the customer's corp tags ``current``:
    add those, remove the library's other names (and ``remove``).  Keyed on the
    content and the causing callback: a re-run is a duplicate, a later edit is not."""
    adds = sorted(set(current))[:MAX_TAGS]
    removes = sorted((set(library_names) | set(remove)) - set(adds))
    if not adds and not removes:
        return []
    events = []
    for index, chunk in enumerate(_chunks(removes, MAX_TAGS)):
        add = adds if index == 0 else []
        material = "\x1f".join([corp_id, identity.external_id, cause_key, str(index), *add, "|", *chunk])
        digest = hashlib.sha256(material.encode("utf-8")).hexdigest()
        events.append(
            IngestEvent(
                type="customer.updated",
                identity=identity,
                idempotency_key=f"wecom:tags:{digest}",
                payload={
                    "cause": "wecom_tags",
                    "corp_id": corp_id,
                    "tags_added": add,
                    "tags_removed": chunk,
                },
                tags_add=tuple(add),
                tags_remove=tuple(chunk),
            )
        )
    return events


def deleted_tag_names(client: WeComClient, tag_id: str) -> list[str]:
    """The name of a deleted corp tag: asked for by id, ``get_corp_tag_list`` still
    answers with it, flagged ``deleted`` (document 92117)."""
    try:
        groups = client.get_corp_tag_list(tag_id=[tag_id])
    except FatalError:
        return []
    return [
        name
        for group in groups
        for tag in group.get("tag", [])
        if str(tag.get("id")) == tag_id and tag.get("deleted") and (name := _usable(tag.get("name")))
    ]


def resync_tags(
    host: Host, account_id: int, cause_key: str, old_names: Sequence[str] = (), tag_id: str = ""
) -> dict[str, int]:
    """After a corp tag was renamed or deleted: every member's customers get their
    current corp tag names, and ``old_names`` removed.  A rename touches only the
    customers holding ``tag_id``; a delete (the tag is gone) touches every customer."""
    account = host.channel_account(account_id)
    if account is None:
        return {"customers": 0}
    client = account_channel(account).client
    names = library(host, account, fresh=True).names
    corp_id = str(account.config.get("corp_id") or "")
    held: dict[str, set[str]] = {}
    staff_of: dict[str, str] = {}
    members = client.get_follow_user_list()
    for start in range(0, len(members), MAX_BATCH_USERS):
        for item in client.iter_batch_get_by_user(members[start : start + MAX_BATCH_USERS]):
            external = str((item.get("external_contact") or {}).get("external_userid") or "")
            follow = item.get("follow_info") or {}
            if not external:
                continue
            staff_of.setdefault(external, str(follow.get("userid") or ""))
            held.setdefault(external, set()).update(
                names[str(t)] for t in follow.get("tag_id") or () if str(t) in names
            )
    renamed = tag_id in names
    if tag_id and not renamed and not old_names:
        old_names = deleted_tag_names(client, tag_id)  # a delete this process never saw the tag of
    old_names = [n for n in old_names if n not in set(names.values())]  # a name still in use stays
    if not old_names and not renamed:
        return {"customers": 0}
    events: list[IngestEvent] = []
    for external, current in sorted(held.items()):
        if renamed and names[tag_id] not in current:
            continue
        identity = Identity(CHANNEL, external, staff_of.get(external) or None)
        # Only the corrected names: the rest of the library is already in step.
        events += tag_state_events(corp_id, identity, current, (), cause_key, remove=old_names)
    for start in range(0, len(events), 100):
        host.ingest(account.tenant_id, events[start : start + 100])
    return {"customers": len(events)}


# -- sopflow → WeCom ---------------------------------------------------------------------------


def push_request(event: Mapping[str, Any]) -> tuple[list[str], list[str]] | None:
    """The tags an event added and removed in sopflow, to mark in WeCom; ``None``
    when there is nothing to push or the change came from WeCom (no echo)."""
    if event.get("source") == PLUGIN:
        return None
    payload = event.get("payload") or {}
    added = [t for t in payload.get("tags_added") or () if isinstance(t, str)]
    removed = [t for t in payload.get("tags_removed") or () if isinstance(t, str)]
    if not added and not removed:
        return None
    return added, removed


def mark_tags(
    host: Host,
    account_id: int,
    external_userid: str,
    staff_userid: str,
    tags_add: Sequence[str] = (),
    tags_remove: Sequence[str] = (),
) -> dict[str, Any]:
    """Mark sopflow's tag changes on the customer in WeCom (``externalcontact/mark_tag``).

    Only names that are corp tags are marked; with ``create_missing_tags: true``
    in the account config, missing added names are first created in the tag group
    "sopflow".  Returns what was done (``added``, ``removed``, ``created``, ``unknown``).
    """
    account = host.channel_account(account_id)
    if account is None:
        return {"added": [], "removed": [], "created": [], "unknown": list(tags_add)}
    client = account_channel(account).client
    ids = library(host, account).ids()
    missing = [t for t in dict.fromkeys(tags_add) if t not in ids and _usable(t)]
    created: list[str] = []
    if missing and account.config.get("create_missing_tags") is True:
        group = client.add_corp_tag(TAG_GROUP_NAME, missing)
        made = {str(t["name"]): str(t["id"]) for t in group.get("tag", [])}
        created = [t for t in missing if t in made]
        forget(account.id)
        ids = {**ids, **made}
    add = [ids[t] for t in dict.fromkeys(tags_add) if t in ids]
    remove = [ids[t] for t in dict.fromkeys(tags_remove) if t in ids and t not in tags_add]
    unknown = [t for t in tags_add if t not in ids]
    if add or remove:
        try:
            client.mark_tag(staff_userid, external_userid, add, remove)
        except SkippableError as exc:  # 84061: the customer and the member are no longer connected
            log.info("wecom: tags not marked on %s: %s", external_userid, exc.user_message)
            return {"added": [], "removed": [], "created": created, "unknown": unknown, "skipped": True}
    if unknown:
        log.info("wecom: not corp tags, not marked in WeCom: %s", ", ".join(unknown))
    return {
        "added": [t for t in tags_add if t in ids],
        "removed": [t for t in tags_remove if t in ids and t not in tags_add],
        "created": created,
        "unknown": unknown,
    }


def job_specs() -> list[JobSpec]:
    return [
        JobSpec(
            name=MARK_JOB,
            fn=mark_tags,
            description="Mark tags sopflow added or removed on a customer in WeCom (mark_tag)",
        ),
        JobSpec(
            name=RESYNC_JOB,
            fn=resync_tags,
            description="After a corp tag was renamed or deleted in WeCom, correct the customers' tags",
        ),
    ]


def library_readable(host: Host, account: ChannelAccountView) -> dict[str, str] | None:
    """id → name, or ``None`` when the app may not read the tag library."""
    try:
        return library(host, account).names
    except FatalError as exc:
        log.warning("wecom: cannot read the corp tag library of account %s: %s", account.id, exc)
        return None
