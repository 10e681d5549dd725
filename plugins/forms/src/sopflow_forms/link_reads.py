"""Tracked links: which fetches count as a read, which destinations are allowed.

A link preview (WeChat, WeCom and chat apps fetch a link to draw its card) and
a browser prefetch are not reads.  They are recognised by the method (``HEAD``),
the prefetch headers browsers send (``Purpose: prefetch``, ``Sec-Purpose:
prefetch``, ``X-Purpose: preview``, ``X-Moz: prefetch``) and the user agent of
known preview fetchers; a tenant adds the agents it sees in its own logs with
the account's ``preview_agents`` setting.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sopflow_forms.inbound import header

#: user-agent substrings of link-preview fetchers (case-insensitive)
DEFAULT_PREVIEW_AGENTS = (
    "facebookexternalhit",
    "facebot",
    "twitterbot",
    "slackbot",
    "telegrambot",
    "whatsapp/",
    "discordbot",
    "linkedinbot",
    "skypeuripreview",
    "googlebot",
    "bingbot",
    "baiduspider",
    "bytespider",
    "yisouspider",
    "wechatshareextension",
    "wxwork-preview",
    "preview",
    "crawler",
    "spider",
)


def split_list(text: Any) -> list[str]:
    return [p.strip().lower() for p in str(text or "").split(",") if p.strip()]


def is_preview(request: Any, extra_agents: list[str]) -> bool:
    """A fetch that is not a person opening the link."""
    if request.method.upper() == "HEAD":
        return True
    for name in ("Purpose", "Sec-Purpose", "X-Purpose", "X-Moz"):
        value = header(request, name).lower()
        if "prefetch" in value or "preview" in value or "prerender" in value:
            return True
    agent = header(request, "User-Agent").lower()
    return any(a in agent for a in (*DEFAULT_PREVIEW_AGENTS, *extra_agents))


def allowed(url: str, hosts: list[str]) -> bool:
    """``url`` is http(s) to a host on the list: ``example.com`` (that host) or
    ``.example.com`` (it and every subdomain)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return False
    for entry in hosts:
        if entry.startswith("."):
            if host == entry[1:] or host.endswith(entry):
                return True
        elif host == entry:
            return True
    return False
