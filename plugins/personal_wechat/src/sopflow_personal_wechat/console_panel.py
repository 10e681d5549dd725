"""Personal WeChat accounts in the operator console: each account's login state
and health, and while logged out the login QR code to scan — drawn as an SVG
by segno (a maintained, dependency-free QR encoder) from the URL the intake
last saw, so a person re-logs the account from the console's channels page.
Read from the pacing row (``health.report``): no gateway call."""

from __future__ import annotations

import io
from html import escape
from typing import Any

import segno
from sopflow_sdk import ConsolePage, ConsoleRequest, Host

from sopflow_personal_wechat.accounts import account_channel
from sopflow_personal_wechat.channel import CHANNEL
from sopflow_personal_wechat.health import report

WORDS = {
    "en": ("Account", "Logged in", "Healthy", "yes", "no", "Scan to log in", "No personal WeChat accounts."),
    "zh": ("账号", "已登录", "健康", "是", "否", "扫码登录", "还没有个人微信账号。"),
}


def login_qr(url: str) -> str:
    """The QR code of ``url`` as inline SVG (attributes only: the console allows no inline style)."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=4, xmldecl=False, title="WeChat login QR")
    return out.getvalue().decode()


def render_accounts(request: ConsoleRequest, host: Host) -> str:
    """The tenant's personal WeChat accounts, every value escaped."""
    account_w, logged_w, healthy_w, yes, no, scan, empty = WORDS.get(request.lang, WORDS["en"])
    rows = []
    for account in host.channel_accounts(CHANNEL):
        if account.tenant_id != request.tenant_id:
            continue
        health: dict[str, Any] = report(account_channel(account, host))
        qr = health.get("qr_url") or ""
        cell = (
            f'<figure class="login-qr">{login_qr(qr)}<figcaption>{escape(scan)}</figcaption></figure>'
            if qr.startswith("https://")
            else ""
        )
        healthy = health["healthy"]
        rows.append(
            f"<tr><td>{escape(account.name)}</td>"
            f"<td>{escape(yes if health['logged_in'] else no)}</td>"
            f'<td class="health-{"ok" if healthy else "bad"}">{escape(yes if healthy else no)}</td>'
            f"<td>{cell}</td></tr>"
        )
    if not rows:
        return f"<p>{escape(empty)}</p>"
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in (account_w, logged_w, healthy_w, ""))
    return (
        f'<table class="personal-wechat"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def console_pages() -> list[ConsolePage]:
    return [ConsolePage("accounts", "Personal WeChat 个人微信", render_accounts, panel_on="channels")]
