"""A small, well-behaved WeCom server-API client for the calls SOPs need.

Every call goes through one path that gets a cached token (refreshing it once
on 40014/42001/40001), spends from the client-side budget for its API, limits
concurrency per API (WeCom answers 45033 above a handful of parallel calls) and
maps the answer onto sopflow's error tree.  Secrets and tokens live in
``Secret`` wrappers and are masked in every error and httpx log line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx
from sopflow_sdk import RetriableError, Secret

from sopflow_wecom.limits import MemberMessageLimiter, RequestBudget
from sopflow_wecom.tokens import LockFactory, MemoryTokenCache, TokenCache, TokenProvider, token_key
from sopflow_wecom.transport import (
    TOKEN_ERRCODES,
    WeComSkippableError,
    check_errcode,
    install_log_redaction,
    send_request,
)

BASE_URL = "https://qyapi.weixin.qq.com/cgi-bin"
#: Calls that deliver something to a person: a timeout after sending is ambiguous.
SEND_PATHS = frozenset(
    {
        "externalcontact/send_welcome_msg",
        "externalcontact/add_msg_template",
        "externalcontact/add_moment_task",
        "message/send",
    }
)
#: Not counted in WeCom's per-API frequency limit; limited per member instead.
UNBUDGETED_PATHS = frozenset({"message/send"})
#: ``batch/get_by_user``: members per call, customers per page (document 92994).
MAX_BATCH_USERS = 100
MAX_BATCH_LIMIT = 100
#: ``list_contact_way``: ways per page (document 92228).
MAX_CONTACT_WAY_LIMIT = 1000

install_log_redaction()

_shared_http: httpx.Client | None = None
_shared_http_guard = threading.Lock()


def shared_http() -> httpx.Client:
    """The process's pooled HTTP client for WeCom (httpx clients are thread-safe).

    Building one per WeComClient re-reads the CA bundle (~50 ms) and opens new
    connections for every short-lived client, e.g. one per profile fetch.
    """
    global _shared_http
    with _shared_http_guard:
        if _shared_http is None or _shared_http.is_closed:
            _shared_http = httpx.Client(timeout=10.0)
        return _shared_http


class WeComClient:
    """Client for one corp and one app secret.

    ``budget``, ``member_limiter`` and ``token_cache`` may be shared between
    clients (and, for the cache, between processes via ``RedisTokenCache``).
    """

    def __init__(
        self,
        corp_id: str,
        secret: Secret | str,
        base_url: str = BASE_URL,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        token_cache: TokenCache | None = None,
        lock_factory: LockFactory | None = None,
        *,
        budget: RequestBudget | None = None,
        member_limiter: MemberMessageLimiter | None = None,
        max_concurrency: int = 5,
        timeout: float | None = None,
    ) -> None:
        self.corp_id = corp_id
        self._secret = Secret(secret)
        self.base_url = base_url.rstrip("/")
        # A caller-chosen timeout needs a client of its own; otherwise share the pool.
        self._owns_http = http is None and timeout is not None
        self._http = http or (httpx.Client(timeout=timeout) if self._owns_http else shared_http())
        self.clock = clock
        self.budget = budget or RequestBudget(clock=clock)
        self.member_limiter = member_limiter or MemberMessageLimiter(clock=clock)
        self._max_concurrency = max_concurrency
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._semaphores_guard = threading.Lock()
        self._tokens = TokenProvider(
            token_key(corp_id, self._secret),
            self._fetch_token,
            token_cache or MemoryTokenCache(),
            lock_factory,
            clock,
        )

    def __repr__(self) -> str:
        return f"WeComClient(corp_id={self.corp_id!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the HTTP client if this client made its own (the shared one stays open)."""
        if self._owns_http:
            self._http.close()

    # -- plumbing -----------------------------------------------------------------

    def _semaphore(self, path: str) -> threading.BoundedSemaphore:
        with self._semaphores_guard:
            sem = self._semaphores.get(path)
            if sem is None:
                sem = self._semaphores[path] = threading.BoundedSemaphore(self._max_concurrency)
            return sem

    def _raw(self, method: str, path: str, params: Mapping[str, Any], json: Any) -> Mapping[str, Any]:
        if path not in UNBUDGETED_PATHS:
            wait = self.budget.reserve(self.corp_id, path)
            if wait > 0:
                raise RetriableError(
                    f"client-side request budget for WeCom {path} is spent; "
                    f"retry in {wait:.1f} s (see Limit/RequestBudget to tune)",
                    retry_after=wait,
                )
        with self._semaphore(path):
            return send_request(
                self._http,
                method,
                f"{self.base_url}/{path}",
                params=params,
                json=json,
                path=path,
                send=path in SEND_PATHS,
            )

    def _fetch_token(self) -> tuple[str, float]:
        params = {"corpid": self.corp_id, "corpsecret": self._secret.reveal()}
        data = check_errcode("gettoken", self._raw("GET", "gettoken", params, None))
        token = Secret(str(data["access_token"]))
        return token.reveal(), float(data.get("expires_in", 7200))

    def call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Mapping[str, Any]:
        """Call ``path`` (relative to ``/cgi-bin``) and return the checked JSON body."""
        token = self._tokens.get()
        for attempt in (1, 2):
            query = {**(params or {}), "access_token": token.reveal()}
            data = self._raw(method, path, query, json)
            if attempt == 1 and data.get("errcode") in TOKEN_ERRCODES:
                token = self._tokens.refresh(stale=token)
                continue
            break
        return check_errcode(path, data)

    def _post(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.call("POST", path, json={k: v for k, v in body.items() if v is not None})

    # -- token & members --------------------------------------------------------------

    def get_token(self) -> Secret:
        """A valid access token (cached; fetched single-flight when needed)."""
        return self._tokens.get()

    def get_follow_user_list(self) -> list[str]:
        return list(self.call("GET", "externalcontact/get_follow_user_list")["follow_user"])

    # -- customers ---------------------------------------------------------------------

    def list_external_contacts(self, userid: str) -> list[str]:
        """The member's customers; ``[]`` for a member without any, which WeCom
        answers with 84061 rather than an empty list (document 92113)."""
        try:
            data = self.call("GET", "externalcontact/list", params={"userid": userid})
        except WeComSkippableError as exc:
            if exc.errcode == 84061:
                return []
            raise
        return list(data.get("external_userid", []))

    def get_external_contact(self, external_userid: str, cursor: str = "") -> Mapping[str, Any]:
        params = {"external_userid": external_userid, "cursor": cursor}
        return self.call("GET", "externalcontact/get", params=params)

    def batch_get_by_user(
        self, userid_list: Sequence[str], cursor: str = "", limit: int = 50
    ) -> Mapping[str, Any]:
        """One page of the customers of up to 100 members: ``external_contact_list``
        (``{external_contact, follow_info}`` items, one per member and customer) and
        ``next_cursor`` (empty on the last page).  ``limit`` is 1–100 (WeCom: default 50)."""
        if not 0 < len(userid_list) <= MAX_BATCH_USERS:
            raise ValueError(f"userid_list holds 1–{MAX_BATCH_USERS} member userids, not {len(userid_list)}")
        if not 0 < limit <= MAX_BATCH_LIMIT:
            raise ValueError(f"limit is 1–{MAX_BATCH_LIMIT}, not {limit}")
        body = {"userid_list": list(userid_list), "cursor": cursor, "limit": limit}
        return self._post("externalcontact/batch/get_by_user", body)

    def iter_batch_get_by_user(
        self, userid_list: Sequence[str], limit: int = 100
    ) -> Iterator[Mapping[str, Any]]:
        """Every ``{external_contact, follow_info}`` item, following ``next_cursor``."""
        cursor = ""
        while True:
            page = self.batch_get_by_user(userid_list, cursor, limit)
            yield from page.get("external_contact_list", [])
            cursor = page.get("next_cursor", "")
            if not cursor:
                return

    # -- contact ways ("联系我") -----------------------------------------------------------

    def add_contact_way(self, type: int = 1, scene: int = 2, **options: Any) -> Mapping[str, Any]:
        """Returns ``config_id`` (persist it: API-made ways are not shown in the console)."""
        return self._post("externalcontact/add_contact_way", {"type": type, "scene": scene, **options})

    def get_contact_way(self, config_id: str) -> Mapping[str, Any]:
        """The way's settings (``type``, ``scene``, ``remark``, ``skip_verify``, ``state``,
        ``user``, ``party``, ``qr_code`` …).  WeCom does not return its creation time."""
        return self._post("externalcontact/get_contact_way", {"config_id": config_id})["contact_way"]

    def list_contact_way(
        self,
        start_time: int | None = None,
        end_time: int | None = None,
        cursor: str = "",
        limit: int = 100,
    ) -> Mapping[str, Any]:
        """One page of ``contact_way: [{config_id}]`` and ``next_cursor``: the ways created
        between ``start_time`` and ``end_time`` (WeCom's defaults: 90 days ago and now; it
        lists only ways made after 2021-07-10 and never temporary-chat ways).  ``limit``
        is 1–1000 (default 100)."""
        if not 0 < limit <= MAX_CONTACT_WAY_LIMIT:
            raise ValueError(f"limit is 1–{MAX_CONTACT_WAY_LIMIT}, not {limit}")
        body = {"start_time": start_time, "end_time": end_time, "cursor": cursor or None, "limit": limit}
        return self._post("externalcontact/list_contact_way", body)

    def update_contact_way(self, config_id: str, **changes: Any) -> None:
        """Change a way's ``remark``, ``skip_verify``, ``state``, ``user``, ``party`` …
        (``type`` and ``scene`` cannot change).  Send every field you want kept:
        what WeCom does with an omitted field is not documented."""
        self._post("externalcontact/update_contact_way", {"config_id": config_id, **changes})

    def del_contact_way(self, config_id: str) -> None:
        self._post("externalcontact/del_contact_way", {"config_id": config_id})

    # -- sending -----------------------------------------------------------------------------

    def send_welcome_msg(
        self, welcome_code: str, text: str | None = None, attachments: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Valid once per ``welcome_code`` within 20 s of the add event (41051 → skip)."""
        body = {
            "welcome_code": welcome_code,
            "text": {"content": text} if text else None,
            "attachments": list(attachments) or None,
        }
        self._post("externalcontact/send_welcome_msg", body)

    def add_msg_template(
        self,
        *,
        chat_type: str = "single",
        external_userid: Sequence[str] = (),
        chat_id_list: Sequence[str] = (),
        sender: str | None = None,
        text: str | None = None,
        attachments: Sequence[Mapping[str, Any]] = (),
        allow_select: bool | None = None,
        tag_filter: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        """Create a mass-send task; members must confirm it. Returns ``msgid``, ``fail_list``."""
        body = {
            "chat_type": chat_type,
            "external_userid": list(external_userid) or None,
            "chat_id_list": list(chat_id_list) or None,
            "sender": sender,
            "text": {"content": text} if text else None,
            "attachments": list(attachments) or None,
            "allow_select": allow_select,
            "tag_filter": tag_filter,
        }
        return self._post("externalcontact/add_msg_template", body)

    def get_groupmsg_list_v2(
        self, start_time: int, end_time: int, chat_type: str = "single", cursor: str = "", limit: int = 100
    ) -> Mapping[str, Any]:
        """One page of the mass sends created between ``start_time`` and ``end_time``
        (at most a month apart): ``group_msg_list`` items carry ``msgid``,
        ``create_time``, ``text`` and ``attachments`` (document 93338)."""
        body = {
            "chat_type": chat_type,
            "start_time": start_time,
            "end_time": end_time,
            "filter_type": 0,  # tasks the corp made (ours), not members'
            "cursor": cursor or None,
            "limit": limit,
        }
        return self._post("externalcontact/get_groupmsg_list_v2", body)

    def get_groupmsg_task(self, msgid: str, cursor: str = "", limit: int = 1000) -> Mapping[str, Any]:
        body = {"msgid": msgid, "cursor": cursor, "limit": limit}
        return self._post("externalcontact/get_groupmsg_task", body)

    def get_groupmsg_send_result(
        self, msgid: str, userid: str, cursor: str = "", limit: int = 1000
    ) -> Mapping[str, Any]:
        """``send_list`` statuses: 0 pending, 1 sent, 2 not a friend, 3 over the cap."""
        body = {"msgid": msgid, "userid": userid, "cursor": cursor, "limit": limit}
        return self._post("externalcontact/get_groupmsg_send_result", body)

    def cancel_groupmsg_send(self, msgid: str) -> None:
        """Stop a mass send the members have not sent yet (document 97610)."""
        self._post("externalcontact/cancel_groupmsg_send", {"msgid": msgid})

    def add_moment_task(
        self,
        text: str | None = None,
        attachments: Sequence[Mapping[str, Any]] = (),
        visible_range: Mapping[str, Any] | None = None,
    ) -> str:
        body = {
            "text": {"content": text} if text else None,
            "attachments": list(attachments) or None,
            "visible_range": visible_range,
        }
        return str(self._post("externalcontact/add_moment_task", body)["jobid"])

    def get_moment_task_result(self, jobid: str) -> Mapping[str, Any]:
        """``status`` 1 started, 2 running, 3 done (then ``result``)."""
        return self.call("GET", "externalcontact/get_moment_task_result", params={"jobid": jobid})

    def send_app_message(
        self, agentid: int | str, touser: str | Sequence[str], text: str, **extra: Any
    ) -> Mapping[str, Any]:
        """A text app message to staff (reminders); ≤30/min and ≤1000/h per member."""
        return self.send_app_payload(agentid, touser, "text", {"content": text}, **extra)

    def send_app_payload(
        self, agentid: int | str, touser: str | Sequence[str], msgtype: str, content: Any, **extra: Any
    ) -> Mapping[str, Any]:
        """An app message of any ``msgtype`` (``news``, ``image``, ``file``, …); same limits."""
        members = touser.split("|") if isinstance(touser, str) else list(touser)
        wait = self.member_limiter.acquire(members)
        if wait > 0:
            raise RetriableError(
                "an app message now would exceed WeCom's per-member limit (30/min, 1000/h) "
                f"and be dropped silently; retry in {wait:.0f} s",
                retry_after=wait,
            )
        body = {
            "touser": "|".join(members),
            "msgtype": msgtype,
            "agentid": int(agentid),
            msgtype: content,
            **extra,
        }
        return self._post("message/send", body)

    # -- tags -------------------------------------------------------------------------------

    def get_corp_tag_list(
        self, tag_id: Sequence[str] = (), group_id: Sequence[str] = ()
    ) -> list[Mapping[str, Any]]:
        body = {"tag_id": list(tag_id) or None, "group_id": list(group_id) or None}
        return list(self._post("externalcontact/get_corp_tag_list", body).get("tag_group", []))

    def add_corp_tag(
        self, group_name: str, tags: Sequence[str], group_id: str | None = None, **extra: Any
    ) -> Mapping[str, Any]:
        body = {
            "group_name": group_name,
            "group_id": group_id,
            "tag": [{"name": name} for name in tags],
            **extra,
        }
        return self._post("externalcontact/add_corp_tag", body)["tag_group"]

    def del_corp_tag(self, tag_id: Sequence[str] = (), group_id: Sequence[str] = ()) -> None:
        self._post(
            "externalcontact/del_corp_tag",
            {"tag_id": list(tag_id) or None, "group_id": list(group_id) or None},
        )

    def mark_tag(
        self, userid: str, external_userid: str, add_tag: Sequence[str] = (), remove_tag: Sequence[str] = ()
    ) -> None:
        body = {
            "userid": userid,
            "external_userid": external_userid,
            "add_tag": list(add_tag),
            "remove_tag": list(remove_tag),
        }
        self._post("externalcontact/mark_tag", body)

    # -- customer groups -----------------------------------------------------------------------

    def groupchat_list(
        self, status_filter: int = 0, owner_userids: Sequence[str] = (), cursor: str = "", limit: int = 100
    ) -> Mapping[str, Any]:
        body: dict[str, Any] = {"status_filter": status_filter, "cursor": cursor, "limit": limit}
        if owner_userids:
            body["owner_filter"] = {"userid_list": list(owner_userids)}
        return self._post("externalcontact/groupchat/list", body)

    def groupchat_get(self, chat_id: str, need_name: bool = False) -> Mapping[str, Any]:
        body = {"chat_id": chat_id, "need_name": int(need_name)}
        return self._post("externalcontact/groupchat/get", body)["group_chat"]
