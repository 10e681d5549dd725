"""The fake WeCom's data and the rules every API call passes through.

Kept apart from the HTTP server so the rules (token validity by the injected
clock, per-API windows answering 45009, injected failures) read in one place
and the API handlers in ``api.py`` stay plain functions over this state.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

#: WeCom's documented per-corp, per-API limits (document 90454).
DOCUMENTED_LIMITS: tuple[tuple[int, float], ...] = ((10_000, 60.0), (150_000, 3_600.0))
#: Per-member app-message limits; WeCom drops the excess silently.
APP_MESSAGE_LIMITS: tuple[tuple[int, float], ...] = ((30, 60.0), (1_000, 3_600.0))
WELCOME_CODE_TTL = 20.0
#: ``list_contact_way`` only knows ways created after 2021-07-10 00:00 China time.
CONTACT_WAY_LIST_EPOCH = 1_625_846_400
#: ``list_contact_way``'s default window when ``start_time`` is omitted.
CONTACT_WAY_LIST_DEFAULT_SPAN = 90 * 86_400
_CHINA = timedelta(hours=8)


class ApiError(Exception):
    """Raised by a handler to answer ``{"errcode": code, "errmsg": msg}``."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


@attrs.define
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float
    corp_id: str | None = None
    errcode: int | None = None


@attrs.define
class IssuedToken:
    corp_id: str
    expires_at: float
    revoked: bool = False


@attrs.define
class MassSendTask:
    msgid: str
    chat_type: str
    #: what was sent: ``text`` and ``attachments`` as the request gave them
    content: Mapping[str, Any]
    #: staff userid → {recipient id → status (0 pending, 1 sent, 2 not friend, 3 cap)}
    recipients: dict[str, dict[str, int]]
    send_time: dict[str, int] = attrs.Factory(dict)
    #: whole seconds, as ``get_groupmsg_list_v2`` filters and answers it
    created_at: int = 0
    #: stopped by ``cancel_groupmsg_send``: members can no longer send it
    cancelled: bool = False


class FakeState:
    """Everything the fake knows; handlers run under ``lock``."""

    def __init__(
        self,
        clock: Callable[[], float],
        corp_id: str,
        secret: str,
        expires_in: int = 7200,
        limits: Mapping[str, Sequence[tuple[int, float]]] | None = None,
        mass_send_cap: tuple[int, str] | None = None,
        agent_id: int = 1000002,
    ) -> None:
        self.clock = clock
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.expires_in = expires_in
        self.corps: dict[str, str] = {corp_id: secret}
        self.tokens: dict[str, IssuedToken] = {}
        self.limits: dict[str, list[tuple[int, float]]] = {k: list(v) for k, v in (limits or {}).items()}
        self.mass_send_cap = mass_send_cap
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self._windows: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self.failures: dict[str, list[tuple[int, str]]] = defaultdict(list)
        #: path → for each coming call, whether WeCom acts on it before its answer is lost
        self.lost_answers: dict[str, list[bool]] = defaultdict(list)
        self.staff: dict[str, dict[str, Any]] = {}
        #: external_userid → {"external_contact": {...}, "follow": {staff userid: follow_info}}
        self.contacts: dict[str, dict[str, Any]] = {}
        self.welcome_codes: dict[str, dict[str, Any]] = {}
        self.welcome_messages: list[dict[str, Any]] = []
        #: config_id → the ``contact_way`` object ``get_contact_way`` answers
        self.contact_ways: dict[str, dict[str, Any]] = {}
        #: config_id → creation time in whole seconds (WeCom filters lists by it but never returns it)
        self.contact_way_created: dict[str, int] = {}
        self.tag_groups: list[dict[str, Any]] = []
        #: tag id → (group id, group name, the tag) of deleted corp tags, which
        #: ``get_corp_tag_list`` still answers for by id, marked ``deleted``
        self.deleted_tags: dict[str, tuple[str, str, dict[str, Any]]] = {}
        #: the departments members can be in (``message/send`` ``toparty``)
        self.departments: set[str] = {"1"}
        #: resigned member → dimission time (``get_unassigned_list``)
        self.resigned: dict[str, int] = {}
        #: (kind "onjob"/"resigned", handover, takeover) → external_userid → transfer
        self.transfers: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
        #: external_userid → when each of its handovers started (at most 2 in 90 days)
        self.transfer_starts: dict[str, list[int]] = {}
        #: customers who will refuse their handover; takers at their customer limit
        self.transfer_refusals: set[str] = set()
        self.takeover_limits: set[str] = set()
        #: (kind, handover, takeover, external_userid) whose end was called back
        self.transfers_announced: set[tuple[str, str, str, str]] = set()
        #: (original owner, China date) → groups handed over that day
        self.chat_transfers_per_day: dict[tuple[str, str], int] = {}
        self.tasks: dict[str, MassSendTask] = {}
        self.deliveries: dict[str, list[float]] = defaultdict(list)
        self.moments: dict[str, dict[str, Any]] = {}
        #: moment_id → a ``get_moment_list`` item plus ``publishers`` (members) and
        #: ``interactions`` (member → {"comment": [...], "like": [...]}), see moments_api.py
        self.posted_moments: dict[str, dict[str, Any]] = {}
        #: jsapi tickets handed out (ticket → expiry), their fetch times, and OAuth codes
        self.tickets: dict[str, float] = {}
        self.ticket_fetches: list[float] = []
        self.oauth_codes: dict[str, dict[str, Any]] = {}
        self.app_messages: dict[str, list[float]] = defaultdict(list)
        self.dropped_app_messages: list[tuple[str, str]] = []
        #: (member, msgtype, content) of every app message delivered
        self.app_message_bodies: list[tuple[str, str, dict[str, Any]]] = []
        self.groups: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}{secrets.token_hex(4)}"

    # -- tokens ---------------------------------------------------------------------------

    def issue_token(self, corp_id: str, secret: str) -> dict[str, Any]:
        if corp_id not in self.corps:
            raise ApiError(40013, "invalid corpid")
        if not secrets.compare_digest(self.corps[corp_id].encode(), secret.encode()):
            raise ApiError(40001, "invalid credential")
        now = self.clock()
        for token, issued in self.tokens.items():
            # WeCom returns the same token while it is valid.
            if issued.corp_id == corp_id and not issued.revoked and issued.expires_at > now:
                left = int(issued.expires_at - now)
                return {"access_token": token, "expires_in": left}
        token = secrets.token_urlsafe(48)
        self.tokens[token] = IssuedToken(corp_id, now + self.expires_in)
        return {"access_token": token, "expires_in": self.expires_in}

    def corp_for_token(self, token: str | None) -> str:
        if not token:
            raise ApiError(41001, "access_token missing")
        issued = self.tokens.get(token)
        if issued is None or issued.revoked:
            raise ApiError(40014, "invalid access_token")
        if issued.expires_at <= self.clock():
            raise ApiError(42001, "access_token expired")
        return issued.corp_id

    # -- limits and injected failures --------------------------------------------------------

    def check_rate(self, corp_id: str, path: str) -> None:
        now = self.clock()
        window = self._windows[(corp_id, path)]
        limits = self.limits.get(path, DOCUMENTED_LIMITS)
        horizon = max((p for _, p in limits), default=0.0)
        while window and window[0] <= now - horizon:
            window.popleft()
        for count, period in limits:
            if sum(1 for t in window if t > now - period) >= count:
                raise ApiError(45009, f"api freq out of limit ({count} per {period:g}s)")
        window.append(now)

    def take_failure(self, path: str) -> None:
        pending = self.failures.get(path)
        if pending:
            errcode, errmsg = pending.pop(0)
            raise ApiError(errcode, errmsg)

    # -- people -----------------------------------------------------------------------------------

    def contact(self, external_userid: str) -> dict[str, Any]:
        found = self.contacts.get(external_userid)
        if found is None:
            raise ApiError(84061, "not external contact")
        return found

    def follows(self, staff_userid: str, external_userid: str) -> bool:
        found = self.contacts.get(external_userid)
        return found is not None and staff_userid in found["follow"]

    # -- the corp tag library ---------------------------------------------------------------

    def new_tag(self, name: str, order: int = 0) -> dict[str, Any]:
        return {"id": self.new_id("et"), "name": name, "create_time": int(self.clock()), "order": order}

    def new_tag_group(self, name: str, order: int = 0) -> dict[str, Any]:
        group = {
            "group_id": self.new_id("etg"),
            "group_name": name,
            "create_time": int(self.clock()),
            "order": order,
            "tag": [],
        }
        self.tag_groups.append(group)
        return group

    def remove_corp_tags(self, tag_ids: Collection[str], group_ids: Collection[str] = ()) -> None:
        """Delete tags (and whole groups): they leave every customer, and a group left
        without tags is deleted too (document 92117)."""
        for group in self.tag_groups:
            gone = group["group_id"] in group_ids
            for tag in group["tag"]:
                if gone or tag["id"] in tag_ids:
                    self.deleted_tags[tag["id"]] = (group["group_id"], group["group_name"], dict(tag))
            group["tag"] = [t for t in group["tag"] if t["id"] not in self.deleted_tags]
        self.tag_groups = [g for g in self.tag_groups if g["tag"]]
        for contact in self.contacts.values():
            for follow in contact["follow"].values():
                follow["tag_id"] = [t for t in follow["tag_id"] if t not in self.deleted_tags]

    # -- per-customer mass-send cap -----------------------------------------------------------

    def _period_start(self, at: float, period: str) -> datetime:
        local = datetime.fromtimestamp(at, tz=UTC) + _CHINA
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if period == "day":
            return day
        if period == "week":
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)

    def cap(self, at: float) -> tuple[int, str]:
        if self.mass_send_cap is not None:
            return self.mass_send_cap
        # Current rule (document 92135): as many per month as the month has days.
        start = self._period_start(at, "month")
        next_month = (start + timedelta(days=32)).replace(day=1)
        return (next_month - start).days, "month"

    def over_cap(self, recipient: str, at: float) -> bool:
        count, period = self.cap(at)
        start = self._period_start(at, period)
        seen = [t for t in self.deliveries[recipient] if self._period_start(t, period) == start]
        return len(seen) >= count

    # -- app messages -------------------------------------------------------------------------------

    def app_message_allowed(self, userid: str, at: float) -> bool:
        sent = self.app_messages[userid]
        return all(sum(1 for t in sent if t > at - p) < c for c, p in APP_MESSAGE_LIMITS)
