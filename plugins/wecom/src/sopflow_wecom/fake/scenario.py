"""What a test does to the fake WeCom: staff, customers, confirmations, faults.

These are the other side of WeCom's API: a customer adding a member, a member
tapping "send" on a mass-send task, tokens expiring.  Customer changes are also
pushed to the configured callback URL, encrypted and signed exactly as WeCom
does, using the plugin's own crypto module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from sopflow_wecom.crypto import WeComCrypto, build_envelope, to_xml
from sopflow_wecom.fake import transfer_api
from sopflow_wecom.fake.state import FakeState


class FakeScenario(FakeState):
    """Test-side controls of the fake; ``FakeWeCom`` adds the HTTP server."""

    callback: tuple[str, WeComCrypto] | None = None
    #: how long the fake waits for a callback's answer: WeCom's own 5 s by default; a
    #: test of what a callback does (not of its time) may allow a loaded machine more
    callback_timeout: float = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.callback_responses: list[httpx.Response] = []
        # One pooled client: a new one per callback re-reads the CA bundle (~50 ms each).
        self._callback_http: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        if self._callback_http is None:
            self._callback_http = httpx.Client(timeout=self.callback_timeout)
        return self._callback_http

    def close_callback_client(self) -> None:
        if self._callback_http is not None:
            self._callback_http.close()
            self._callback_http = None

    # -- knobs for tests --------------------------------------------------------------------------

    def add_corp(self, corp_id: str, secret: str) -> None:
        self.corps[corp_id] = secret

    def set_limit(self, path: str, *windows: tuple[int, float]) -> None:
        """Answer 45009 once ``path`` exceeds any ``(count, period)`` window."""
        self.limits[path] = list(windows)

    def fail_next(self, path: str, errcode: int, errmsg: str = "injected", times: int = 1) -> None:
        """Answer the next ``times`` calls to ``path`` with ``errcode``."""
        self.failures[path].extend([(errcode, errmsg)] * times)

    def lose_answer(self, path: str, *, acted: bool = True, times: int = 1) -> None:
        """The next ``times`` calls to ``path`` get no answer: the connection drops
        after WeCom acted on the request (``acted``, e.g. a mass-send task exists)
        or before it did.  The caller cannot tell which: that is the ambiguous send."""
        self.lost_answers[path].extend([acted] * times)

    def expire_tokens(self) -> None:
        """Make every issued token expired (calls answer 42001)."""
        now = self.clock()
        for issued in self.tokens.values():
            issued.expires_at = min(issued.expires_at, now)

    def invalidate_tokens(self) -> None:
        """Revoke every issued token (calls answer 40014)."""
        for issued in self.tokens.values():
            issued.revoked = True

    def add_staff(self, userid: str, name: str = "", department: Sequence[int] = (1,)) -> None:
        self.staff.setdefault(
            userid, {"userid": userid, "name": name or userid, "department": list(department)}
        )
        self.departments.update(str(d) for d in department)

    def resign(self, userid: str) -> httpx.Response | None:
        """The member leaves the corp: their customers wait for a successor
        (``get_unassigned_list``) and they can no longer be sent to.  The contacts
        callback follows (``change_contact`` / ``delete_user``, document 90970)."""
        with self.lock:
            self.resigned[userid] = int(self.clock())
            self.staff.pop(userid, None)
        return self._send_event("change_contact", {"ChangeType": "delete_user", "UserID": userid})

    def add_group(self, chat_id: str, owner: str, name: str = "", members: Sequence[str] = ()) -> None:
        now = int(self.clock())
        self.groups[chat_id] = {
            "chat_id": chat_id,
            "name": name,
            "owner": owner,
            "create_time": now,
            "notice": "",
            "member_list": [self._group_member(m, owner, now) for m in members],
            "admin_list": [],
            "member_version": self.new_id("mv"),
        }

    @staticmethod
    def _group_member(userid: str, owner: str, at: int) -> dict[str, Any]:
        """A ``member_list`` item (document 92122): ``type`` 1 member, 2 customer;
        ``join_scene`` 1 invited directly by a member (who is the ``invitor``)."""
        member: dict[str, Any] = {
            "userid": userid,
            "type": 2 if userid.startswith("wm") else 1,
            "join_time": at,
            "join_scene": 1,
            "group_nickname": "",
            "name": userid,
        }
        if userid != owner:
            member["invitor"] = {"userid": owner}
        return member

    def confirm(self, msgid: str, userid: str) -> None:
        """The member taps "send" on a mass-send task: deliver to each recipient."""
        with self.lock:
            task = self.tasks[msgid]
            if task.cancelled:
                return  # WeCom no longer offers a stopped task to its members
            now = self.clock()
            for recipient in task.recipients.get(userid, {}):
                if task.chat_type == "single" and not self.follows(userid, recipient):
                    status = 2
                elif self.over_cap(recipient, now):
                    status = 3
                else:
                    status = 1
                    self.deliveries[recipient].append(now)
                task.recipients[userid][recipient] = status
            task.send_time[userid] = int(now)

    def refuse_transfer(self, *external_userids: str) -> None:
        """These customers will refuse their handover (result status 3)."""
        with self.lock:
            self.transfer_refusals.update(external_userids)

    def limit_takeover(self, *userids: str) -> None:
        """These members are at their customer limit: handovers to them end in status 4."""
        with self.lock:
            self.takeover_limits.update(userids)

    def settle_transfers(self) -> int:
        """End every handover whose 24 hours are up and send what WeCom calls back:
        ``transfer_fail`` (``FailReason``) to the taker for a refusal or a limit, and
        ``del_external_contact`` with ``Source`` ``DELETE_BY_TRANSFER`` to the giver of a
        completed on-job handover.  Returns how many handovers ended."""
        calls, ended = [], 0
        with self.lock:
            for kind, handover, takeover in list(self.transfers):
                for ext, record in transfer_api.settle(self, kind, handover, takeover).items():
                    key = (kind, handover, takeover, ext)
                    if record["status"] == 2 or key in self.transfers_announced:
                        continue
                    self.transfers_announced.add(key)
                    ended += 1
                    if record["status"] in transfer_api.FAIL_REASONS:
                        calls.append(
                            {
                                "ChangeType": "transfer_fail",
                                "FailReason": transfer_api.FAIL_REASONS[record["status"]],
                                "UserID": takeover,
                                "ExternalUserID": ext,
                            }
                        )
                    elif kind == "onjob":
                        calls.append(
                            {
                                "ChangeType": "del_external_contact",
                                "Source": "DELETE_BY_TRANSFER",
                                "UserID": handover,
                                "ExternalUserID": ext,
                            }
                        )
        for fields in calls:  # outside the lock: the receiver may call the fake back
            self._send_event("change_external_contact", fields)
        return ended

    def post_moment(self, creator: str, text: str = "", *, publishers: Sequence[str] = ()) -> str:
        """A moment appears: a member's own (``create_type`` 1, ``creator`` set) or,
        with ``publishers``, a corp moment those members published.  Returns its id."""
        with self.lock:
            moment_id = self.new_id("mom")
            corp = bool(publishers)
            self.posted_moments[moment_id] = {
                "moment_id": moment_id,
                "creator": creator,
                "create_time": int(self.clock()),
                "create_type": 0 if corp else 1,
                "visible_type": 1,
                "text": {"content": text},
                "publishers": list(publishers) if corp else [creator],
                "interactions": {},
            }
            return moment_id

    def _interact(self, moment_id: str, userid: str, external_userid: str, kind: str) -> None:
        with self.lock:
            mine = self.posted_moments[moment_id]["interactions"].setdefault(
                userid, {"comment": [], "like": []}
            )
            who = "external_userid" if external_userid.startswith("wm") else "userid"
            if kind == "like" and any(x.get(who) == external_userid for x in mine["like"]):
                return  # one like per person
            mine[kind].append({who: external_userid, "create_time": int(self.clock())})

    def like_moment(self, moment_id: str, userid: str, external_userid: str) -> None:
        """A customer likes the moment as ``userid`` (the member who published it) shows it."""
        self._interact(moment_id, userid, external_userid, "like")

    def comment_moment(self, moment_id: str, userid: str, external_userid: str) -> None:
        """A customer comments on the moment (WeCom gives no comment text)."""
        self._interact(moment_id, userid, external_userid, "comment")

    def oauth_code(self, userid: str) -> str:
        """WeCom redirects ``userid`` back to the page with an OAuth code (5 minutes, once)."""
        with self.lock:
            code = self.new_id("code")
            self.oauth_codes[code] = {"userid": userid, "issued_at": self.clock()}
            return code

    def confirm_moment(self, jobid: str) -> None:
        """The moment task finishes creating (status 1 → 3)."""
        with self.lock:
            self.moments[jobid].update(status=3, moment_id=self.new_id("mom"))

    # -- people and callbacks -------------------------------------------------------------------

    def seed_contact(
        self,
        staff_userid: str,
        external_userid: str,
        name: str = "",
        *,
        state: str | None = None,
        tag_ids: Sequence[str] = (),
        gender: int = 0,
        corp_name: str = "",
        remark: str = "",
        createtime: int | None = None,
        unionid: str = "",
        remark_mobiles: Sequence[str] = (),
    ) -> None:
        """A customer already connected to ``staff_userid`` (before sopflow was set up):
        the relationship exists, no callback is sent.  ``corp_name`` makes the customer
        a WeCom user (``type`` 2) rather than a WeChat user (1).  ``unionid``: WeCom
        gives it for WeChat users only, when the corp is bound to an open-platform
        developer id (document 92114); ``remark_mobiles``: the member's note of their phones."""
        with self.lock:
            self.add_staff(staff_userid)
            contact = self.contacts.setdefault(
                external_userid,
                {
                    "external_contact": {
                        "external_userid": external_userid,
                        "name": name or external_userid,
                        "avatar": "",
                        "type": 2 if corp_name else 1,
                        "gender": gender,
                        **({"corp_name": corp_name, "corp_full_name": corp_name} if corp_name else {}),
                        **({"unionid": unionid} if unionid and not corp_name else {}),
                    },
                    "follow": {},
                },
            )
            contact["follow"][staff_userid] = {
                "userid": staff_userid,
                "remark": remark,
                "description": "",
                "createtime": int(self.clock()) if createtime is None else createtime,
                "tag_id": list(tag_ids),
                "remark_corp_name": "",
                "remark_mobiles": list(remark_mobiles),
                "oper_userid": external_userid,  # the customer added the member
                "add_way": 1 if state else 0,
                "state": state or "",
            }

    def add_customer(
        self,
        staff_userid: str,
        external_userid: str,
        name: str = "",
        state: str | None = None,
        *,
        welcome: bool = True,
        tag_ids: Sequence[str] = (),
        unionid: str = "",
        remark: str = "",
    ) -> str | None:
        """A customer adds ``staff_userid``; returns the WelcomeCode (or ``None``).
        ``tag_ids``: corp tags the member gives the customer as they accept.

        Sends the ``add_external_contact`` callback when one is configured.
        """
        with self.lock:
            self.seed_contact(
                staff_userid,
                external_userid,
                name,
                state=state,
                tag_ids=tag_ids,
                unionid=unionid,
                remark=remark,
            )
            code = None
            if welcome:
                code = self.new_id("wc")
                self.welcome_codes[code] = {
                    "issued_at": self.clock(),
                    "used": False,
                    "userid": staff_userid,
                    "external_userid": external_userid,
                }
        fields = {
            "ChangeType": "add_external_contact",
            "UserID": staff_userid,
            "ExternalUserID": external_userid,
            "State": state,
            "WelcomeCode": code,
        }
        self._send_event("change_external_contact", fields)
        return code

    def scan(
        self, config_id: str, external_userid: str, name: str = "", *, staff_userid: str | None = None
    ) -> str | None:
        """A customer scans the contact way's QR code: they are added to one of its
        members (``staff_userid``, else the first) and the callback carries the way's
        *current* ``state``.  Returns the WelcomeCode."""
        with self.lock:
            way = self.contact_ways.get(config_id)
            if way is None:
                raise KeyError(f"no contact way {config_id!r} (deleted?)")
            users = list(way.get("user") or [])
            staff = staff_userid if staff_userid in users else users[0]
            state = way.get("state") or None
        return self.add_customer(staff, external_userid, name, state=state)

    def create_corp_tags(self, group_name: str, *names: str) -> list[str]:
        """Add tags to the corp tag library (as the admin console does); returns their ids."""
        with self.lock:
            group = next((g for g in self.tag_groups if g["group_name"] == group_name), None)
            if group is None:
                group = self.new_tag_group(group_name)
            made = [self.new_tag(n) for n in names]
            group["tag"].extend(made)
            return [t["id"] for t in made]

    def tag_customer(
        self,
        staff_userid: str,
        external_userid: str,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> httpx.Response | None:
        """A member tags the customer in the client or console (corp tag ids): the
        ``edit_external_contact`` callback follows (it names no tags)."""
        with self.lock:
            follow = self.contacts[external_userid]["follow"][staff_userid]
            follow["tag_id"] = sorted((set(follow["tag_id"]) | set(add)) - set(remove))
        return self._send_event(
            "change_external_contact",
            {
                "ChangeType": "edit_external_contact",
                "UserID": staff_userid,
                "ExternalUserID": external_userid,
            },
        )

    def rename_corp_tag(self, tag_id: str, name: str) -> httpx.Response | None:
        """The admin renames a corp tag in the console (``change_external_tag`` update)."""
        with self.lock:
            for group in self.tag_groups:
                for tag in group["tag"]:
                    if tag["id"] == tag_id:
                        tag["name"] = name
        return self._send_event(
            "change_external_tag", {"ChangeType": "update", "Id": tag_id, "TagType": "tag"}
        )

    def delete_corp_tag(self, tag_id: str) -> httpx.Response | None:
        """The admin deletes a corp tag in the console: it leaves every customer
        (``change_external_tag`` delete)."""
        with self.lock:
            self.remove_corp_tags({tag_id})
        return self._send_event(
            "change_external_tag", {"ChangeType": "delete", "Id": tag_id, "TagType": "tag"}
        )

    def tags_of(self, staff_userid: str, external_userid: str) -> list[str]:
        """The names of the corp tags ``staff_userid`` has on the customer."""
        with self.lock:
            ids = set(self.contacts[external_userid]["follow"][staff_userid]["tag_id"])
            return sorted(t["name"] for g in self.tag_groups for t in g["tag"] if t["id"] in ids)

    def create_group(
        self, chat_id: str, owner: str, name: str = "", members: Sequence[str] = ()
    ) -> httpx.Response | None:
        """A member creates a customer group (``change_external_chat`` create)."""
        with self.lock:
            self.add_staff(owner)
            self.add_group(chat_id, owner, name, members)
        return self._send_event("change_external_chat", {"ChangeType": "create", "ChatId": chat_id})

    def delete_follow_user(self, staff_userid: str, external_userid: str) -> None:
        """The customer deletes the member (``del_follow_user``)."""
        self._unfollow(staff_userid, external_userid)
        self._send_event(
            "change_external_contact",
            {"ChangeType": "del_follow_user", "UserID": staff_userid, "ExternalUserID": external_userid},
        )

    def approve_archive(self, staff_userid: str, external_userid: str) -> str:
        """The customer agrees that their chats with the member are archived
        (``msg_audit_approved``, with a WelcomeCode as WeCom sends it); returns the code."""
        with self.lock:
            code = self.new_id("wc")
            self.welcome_codes[code] = {
                "issued_at": self.clock(),
                "used": False,
                "userid": staff_userid,
                "external_userid": external_userid,
            }
        self._send_event(
            "change_external_contact",
            {
                "ChangeType": "msg_audit_approved",
                "UserID": staff_userid,
                "ExternalUserID": external_userid,
                "WelcomeCode": code,
            },
        )
        return code

    def delete_external_contact(self, staff_userid: str, external_userid: str) -> None:
        """The member deletes the customer (``del_external_contact``)."""
        self._unfollow(staff_userid, external_userid)
        self._send_event(
            "change_external_contact",
            {"ChangeType": "del_external_contact", "UserID": staff_userid, "ExternalUserID": external_userid},
        )

    def customer_message(self, from_user: str, text: str) -> httpx.Response | None:
        """A text message to the app, shaped like WeCom's (and its official sample's)."""
        fields = {
            "ToUserName": self.corp_id,
            "FromUserName": from_user,
            "CreateTime": int(self.clock()),
            "MsgType": "text",
            "Content": text,
            "MsgId": self.new_id("")[:10],
            "AgentID": self.agent_id,
        }
        return self.deliver(fields)

    def _unfollow(self, staff_userid: str, external_userid: str) -> None:
        with self.lock:
            contact = self.contacts.get(external_userid)
            if contact is not None:
                contact["follow"].pop(staff_userid, None)

    def _send_event(self, event: str, extra: Mapping[str, Any]) -> httpx.Response | None:
        fields = {
            "ToUserName": self.corp_id,
            "FromUserName": "sys",
            "CreateTime": int(self.clock()),
            "MsgType": "event",
            "Event": event,
        }
        fields.update({k: v for k, v in extra.items() if v is not None})
        return self.deliver(fields)

    def set_callback(self, url: str, token: str, encoding_aes_key: str) -> None:
        """Where (and with which Token/EncodingAESKey) to POST callbacks."""
        self.callback = (url, WeComCrypto(token, encoding_aes_key, self.corp_id))

    def deliver(self, fields: Mapping[str, Any]) -> httpx.Response | None:
        """Encrypt ``fields`` as callback XML and POST it, as WeCom does."""
        if self.callback is None:
            return None
        url, crypto = self.callback
        encrypted, signature, ts, nonce = crypto.encrypt(to_xml(fields), timestamp=int(self.clock()))
        query = {"msg_signature": signature, "timestamp": ts, "nonce": nonce}
        body = build_envelope(self.corp_id, encrypted, str(self.agent_id))
        response = self._http().post(
            url,
            params=query,
            content=body.encode("utf-8"),
            timeout=self.callback_timeout,
            headers={"Content-Type": "text/xml"},
        )
        self.callback_responses.append(response)
        return response

    def verify_callback_url(self) -> bool:
        """Run the console's GET echostr handshake; ``True`` if the answer is exact."""
        assert self.callback is not None, "call set_callback first"
        url, crypto = self.callback
        plain = self.new_id("")[:19]
        echostr, signature, ts, nonce = crypto.encrypt(plain, timestamp=int(self.clock()))
        query = {"msg_signature": signature, "timestamp": ts, "nonce": nonce, "echostr": echostr}
        response = self._http().get(url, params=query)
        return response.status_code == 200 and response.content == plain.encode("ascii")
