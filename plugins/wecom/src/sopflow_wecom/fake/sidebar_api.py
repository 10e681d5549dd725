"""The fake WeCom's pieces for pages opened inside WeCom (the chat sidebar).

``get_jsapi_ticket`` (the corp's ticket) and ``ticket/get?type=agent_config``
(the app's), each valid 7200 s, at most 400 fetches an hour per corp and 100 per
app, answering 45009 beyond (document 90506); ``auth/getuserinfo?code=``
exchanges an OAuth code (valid 5 minutes, once; 40029 otherwise) for the
member's ``userid`` (document 91023).  ``oauth_code`` (``scenario.py``) is WeCom
redirecting a member back with a code.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from sopflow_wecom.fake.routing import arg, route
from sopflow_wecom.fake.state import ApiError, FakeState

TICKET_TTL = 7200
CODE_TTL = 300
CORP_FETCHES_PER_HOUR, APP_FETCHES_PER_HOUR = 400, 100


def _ticket(s: FakeState, kind: str) -> Mapping[str, Any]:
    now = s.clock()
    s.ticket_fetches = [t for t in s.ticket_fetches if t > now - 3600]
    # the fake has one app per corp: the app's limit is the one reached first
    if len(s.ticket_fetches) >= min(CORP_FETCHES_PER_HOUR, APP_FETCHES_PER_HOUR):
        raise ApiError(45009, "api freq out of limit (jsapi_ticket)")
    s.ticket_fetches.append(now)
    ticket = f"{kind}-" + secrets.token_urlsafe(24)
    s.tickets[ticket] = now + TICKET_TTL
    return {"ticket": ticket, "expires_in": TICKET_TTL}


@route("get_jsapi_ticket")
def get_jsapi_ticket(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    return _ticket(s, "corp")


@route("ticket/get")
def ticket_get(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    if q.get("type") != "agent_config":
        raise ApiError(40058, "type must be agent_config")
    return _ticket(s, "agent")


@route("auth/getuserinfo")
def auth_getuserinfo(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    code = s.oauth_codes.pop(arg(q, "code"), None)
    if code is None or s.clock() > code["issued_at"] + CODE_TTL:
        raise ApiError(40029, "invalid code")
    if code["userid"] in s.staff:
        return {"userid": code["userid"]}
    return {"openid": code["userid"]}  # not a member of the corp
