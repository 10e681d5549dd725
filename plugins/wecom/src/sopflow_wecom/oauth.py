"""Who is looking: WeCom's OAuth for a page opened inside WeCom (document 91023,
91335).  The page is reached through ``authorize_url``; WeCom redirects back with
a ``code`` (valid 5 minutes, once) that ``member_from_code`` exchanges for the
member's ``userid`` with ``auth/getuserinfo``.  A code that is not a member's
(an outsider's ``openid``) or not valid is refused, so the sidebar trusts no
typed-in identity.
"""

from __future__ import annotations

from urllib.parse import urlencode

from sopflow_sdk import FatalError

from sopflow_wecom.client import WeComClient

AUTHORIZE_BASE = "https://open.weixin.qq.com/connect/oauth2/authorize"
#: auth/getuserinfo's answer for a code that is wrong, used or expired
INVALID_CODE = 40029


def authorize_url(corp_id: str, agent_id: int | str, redirect_uri: str, state: str = "") -> str:
    """The address that sends the member through WeCom's silent OAuth (snsapi_base)."""
    query = urlencode(
        {
            "appid": corp_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
            "agentid": str(agent_id),
        }
    )
    return f"{AUTHORIZE_BASE}?{query}#wechat_redirect"


def member_from_code(client: WeComClient, code: str) -> str:
    """The ``userid`` of the member the code was issued to; ``FatalError`` for a code
    of someone outside the corp, and WeCom's own error (errcode 40029) for a bad one."""
    if not code or len(code) > 512:
        raise FatalError("the OAuth code is missing or too long: open the page through WeCom")
    data = client.call("GET", "auth/getuserinfo", params={"code": code})
    userid = data.get("userid") or data.get("UserId")
    if not userid:
        raise FatalError("the OAuth code is not a member's of this corp (WeCom gave an openid)")
    return str(userid)
