"""The live codes (渠道活码) in the operator console: a page of the plugin's own
table, also shown as a panel on the console's channels page
(``register_console_pages``).  Read only, from sopflow's database: no WeCom call."""

from __future__ import annotations

from html import escape
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import ConsolePage, ConsoleRequest, Host

from sopflow_wecom import store

#: Codes shown, newest first (the API route pages through all of them).
SHOWN = 50
WORDS = {
    "en": ("Source", "Staff", "Remark", "QR code", "open", "No live codes yet."),
    "zh": ("来源", "成员", "备注", "二维码", "打开", "还没有渠道活码。"),
}


def render_live_codes(request: ConsoleRequest, host: Host) -> str:
    """The tenant's live codes as an HTML table, every value escaped."""
    table = store.live_codes
    with host.transaction(request.tenant_id) as tx:
        rows = list(
            tx.connection.execute(
                sa.select(table.c.source, table.c.staff, table.c.remark, table.c.qr_code)
                .where(table.c.tenant_id == request.tenant_id)
                .order_by(table.c.created_to.desc(), table.c.id.desc())
                .limit(SHOWN)
            )
        )
    source, staff, remark, qr, open_, empty = WORDS.get(request.lang, WORDS["en"])
    if not rows:
        return f"<p>{escape(empty)}</p>"
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in (source, staff, remark, qr))
    body = "".join(
        "<tr>"
        f"<td>{escape(r.source or '')}</td>"
        f"<td>{escape(', '.join(r.staff or []))}</td>"
        f"<td>{escape(r.remark or '')}</td>"
        f"<td>{_qr_link(r.qr_code, open_)}</td>"
        "</tr>"
        for r in rows
    )
    return f'<table class="live-codes"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _qr_link(url: Any, label: str) -> str:
    # only WeCom's https image links become links; anything else is shown as text
    if isinstance(url, str) and url.startswith("https://"):
        return f'<a href="{escape(url, quote=True)}" rel="noopener noreferrer">{escape(label)}</a>'
    return escape(str(url or ""))


def console_pages() -> list[ConsolePage]:
    return [ConsolePage("live-codes", "Live codes 渠道活码", render_live_codes, panel_on="channels")]
