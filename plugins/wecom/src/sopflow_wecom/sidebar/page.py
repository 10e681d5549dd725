"""The sidebar's HTML: the page WeCom opens (a shell whose script signs the JS-SDK
and asks which customer's chat is open), the customer's panel loaded into it,
and the refusal pages.  Every value is escaped; the page runs no inline script
(its policy refuses it) and loads only its own files and WeCom's JS-SDK."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

#: WeCom's JS-SDK (document 90514); the page loads it unless ``wx`` is already there
JSSDK = "https://res.wx.qq.com/open/js/jweixin-1.2.0.js"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self' https://res.wx.qq.com; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="/console/static/console.css"></head>'
        f"<body>{body}</body></html>"
    )


NOTICES = {
    "sent": "Recorded as sent. 已记录为已发送。",
    "pending": "WeCom has not seen this message sent yet: send it from the chat, then tap again. "
    "企业微信尚未确认发送：请先在聊天中发送，再点一次。",
    "skipped": "Skipped: it will not be sent. 已跳过，不会发送。",
    "saved": "Saved. 已保存。",
    "done": "This touch is already done. 该待办已处理。",
    "not_skipped": "WeCom could not stop this message: it may already be sent. 企业微信无法撤回该消息。",
}


def shell(base: str, csrf_token: str, notice: str | None = None) -> str:
    """The page itself: the customer's panel is filled in by ``sidebar.js``."""
    said = NOTICES.get(notice or "")
    body = (
        (f'<p id="notice" role="status">{escape(said)}</p>' if said else "")
        + f'<main id="sidebar" data-base="{escape(base, quote=True)}" '
        f'data-jssdk="{escape(JSSDK, quote=True)}" data-csrf="{escape(csrf_token, quote=True)}">'
        '<p id="status" role="status">Finding the customer of this chat… 正在识别当前客户…</p>'
        '<section id="panel" aria-live="polite"></section>'
        f'<form id="sign-out" method="post" action="{escape(base, quote=True)}/sign-out">'
        f'<input type="hidden" name="_csrf" value="{escape(csrf_token, quote=True)}">'
        '<button type="submit">Sign out 退出</button></form></main>'
        f'<script src="{escape(base, quote=True)}/sidebar.js"></script>'
    )
    return _document("sopflow sidebar", body)


def signed_out() -> str:
    return _document(
        "sopflow sidebar",
        '<main><p id="signed-out" role="status">Signed out. Reopen the sidebar from a chat to sign in again. '
        "已退出，请从客户聊天中重新打开侧边栏。</p></main>",
    )


def refusal(message: str) -> str:
    """A page that says why the sidebar will not open, and nothing else."""
    return _document("sopflow sidebar", f'<main><p class="error" role="alert">{escape(message)}</p></main>')


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def panel(
    customer: Any,
    overview: Mapping[str, Any],
    fields: Mapping[str, Any],
    form: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
    typed: Mapping[str, str] | None = None,
) -> str:
    """The customer's profile, tags, stages, active SOPs, today's touches and the
    edit form (with each field's problem and the text typed, after a refused save)."""
    rows = "".join(
        f'<tr><th scope="row">{escape(getattr(fields.get(key), "label", "") or key)}</th>'
        f"<td>{escape(_shown(value))}</td></tr>"
        for key, value in sorted(customer.fields.items())
    )
    tags = "".join(f'<li class="tag">{escape(t)}</li>' for t in sorted(customer.tags))
    stages = "".join(
        f"<li>{escape(pipeline)}: <strong>{escape(stage)}</strong></li>"
        for pipeline, stage in overview["stages"].items()
    )
    sops = "".join(f"<li>{escape(s['sop'])}</li>" for s in overview["sops"])
    return (
        f'<h1 id="customer-name">{escape(customer.display_name or "—")}</h1>'
        f'<table class="fields"><tbody>{rows}</tbody></table>'
        f'<h2>Tags 标签</h2><ul id="tags">{tags or "<li>—</li>"}</ul>'
        f'<h2>Stage 阶段</h2><ul id="stages">{stages or "<li>—</li>"}</ul>'
        f'<h2>SOPs</h2><ul id="sops">{sops or "<li>—</li>"}</ul>'
        f"<h2>Today 今日待办</h2>{_touches(overview['touches'], form)}"
        f"{_edit_form(customer, fields, form, errors or {}, typed)}"
    )


def edited(body: str) -> str:
    """A refused save: the panel again, with the problems, outside the shell (no
    script needed to show it; its forms post as before)."""
    return _document(
        "sopflow sidebar",
        f'<main id="sidebar" data-state="shown"><section id="panel">{body}</section></main>',
    )


def _hidden(form: Mapping[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(k, quote=True)}" value="{escape(v, quote=True)}">'
        for k, v in (("_csrf", form["csrf"]), ("external_userid", form["external_userid"]))
    )


def _edit_form(
    customer: Any,
    fields: Mapping[str, Any],
    form: Mapping[str, str],
    errors: Mapping[str, str],
    typed: Mapping[str, str] | None,
) -> str:
    """The customer's own fields (a plugin's read-only ones are shown above only) and
    tags as text, as the console edits them; the engine checks what is typed."""

    def row(name: str, label: str, value: str, problem: str | None) -> str:
        shown = typed[name] if typed is not None and name in typed else value
        error = (
            f'<span class="error" role="alert" id="error-{escape(name, quote=True)}">{escape(problem)}</span>'
            if problem
            else ""
        )
        return (
            f'<label>{escape(label)} <input name="{escape(name, quote=True)}" '
            f'value="{escape(shown, quote=True)}"></label>{error}'
        )

    rows = "".join(
        row(f"field.{key}", d.label or key, _shown(customer.fields.get(key)), errors.get(key))
        for key, d in sorted(fields.items())
        if not d.read_only
    )
    rows += row("tags", "Tags 标签", ", ".join(sorted(customer.tags)), errors.get("tags"))
    others = [m for k, m in errors.items() if k != "tags" and k not in fields]
    summary = "".join(f'<p class="error" role="alert">{escape(m)}</p>' for m in others)
    action = f"{form['base']}/customer"
    return (
        f'<h2>Edit 编辑</h2>{summary}<form id="edit" method="post" action="{escape(action, quote=True)}">'
        f'{_hidden(form)}{rows}<button type="submit">Save 保存</button></form>'
    )


def _tap_buttons(touch: Mapping[str, Any], form: Mapping[str, str]) -> str:
    """One tap "sent" or "skip" for a touch awaiting the member (a mass send sent
    from the chat, a manual send)."""
    if touch["status"] != "pending":
        return ""
    hidden = "".join(
        f'<input type="hidden" name="{escape(k, quote=True)}" value="{escape(v, quote=True)}">'
        for k, v in (("_csrf", form["csrf"]), ("external_userid", form["external_userid"]))
    )
    buttons = []
    for tap, label in (("sent", "Sent 已发送"), ("skip", "Skip 跳过")):
        action = f"{form['base']}/touches/{int(touch['id'])}/{tap}"
        buttons.append(
            f' <form method="post" action="{escape(action, quote=True)}" class="inline" data-tap="{tap}">'
            f'{hidden}<button type="submit">{label}</button></form>'
        )
    return "".join(buttons)


def _touches(touches: Sequence[Mapping[str, Any]], form: Mapping[str, str]) -> str:
    if not touches:
        return '<p id="touches">Nothing due today. 今日无待办。</p>'
    items = "".join(
        f'<li data-touch="{int(t["id"])}">{escape(t["sop"])} · step {int(t["step_index"]) + 1} · '
        f'<time datetime="{escape(t["due_at"], quote=True)}">{escape(_minute(t["due_at"]))}</time>'
        f' · <span class="status">{escape(t["status"])}</span>{_tap_buttons(t, form)}</li>'
        for t in touches
    )
    return f'<ul id="touches">{items}</ul>'


def _minute(iso: str) -> str:
    """``2026-01-05 09:00`` for an ISO instant (UTC, as the console shows times)."""
    return iso[:16].replace("T", " ")
