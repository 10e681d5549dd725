"""The hosted form's pages: small, mobile-first HTML with every value escaped.

Nothing a tenant or a customer typed reaches the page unescaped
(``html.escape`` with quotes), and the pages load no script or outside asset.
"""

from __future__ import annotations

from html import escape
from typing import Any

from sopflow_sdk import InboundResponse

STYLE = (
    'body{font:16px/1.5 -apple-system,system-ui,"PingFang SC","Microsoft YaHei",sans-serif;marg'
    "in:0;background:#f6f7f9;color:#1d2129}main{max-width:34rem;margin:0 auto;padding:1rem}h1{f"
    "ont-size:1.35rem}fieldset{border:0;margin:0 0 1rem;padding:0}legend,label.q{font-weight:60"
    "0;display:block;margin-bottom:.35rem}input[type=text],input[type=number],input[type=date]{"
    "width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #c9cdd4;bor"
    "der-radius:.4rem}.opt{display:block;padding:.35rem 0}.err{color:#c0392b;font-size:.9rem}.e"
    "rrs{background:#fdecea;padding:.6rem;border-radius:.4rem}button{width:100%;padding:.8rem;f"
    "ont-size:1.05rem;border:0;border-radius:.4rem;background:#07c160;color:#fff}"
)

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{title}</title><style>{style}</style></head>
<body><main>{body}</main></body></html>"""


def page(status: int, title: str, body: str, headers: dict[str, str] | None = None) -> InboundResponse:
    html = PAGE.format(title=escape(title), style=STYLE, body=body)
    base = {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    }
    return InboundResponse(
        status=status, body=html, media_type="text/html; charset=utf-8", headers={**base, **(headers or {})}
    )


def message(status: int, title: str, text: str) -> InboundResponse:
    return page(status, title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>")


def _input(q: dict[str, Any], field: Any, value: Any) -> str:
    name = escape(q["field"])
    req = " required" if q["required"] else ""
    if field.type in ("choice", "multi_choice", "bool"):
        kind = "checkbox" if field.type == "multi_choice" else "radio"
        options = (
            [("yes", "是 / Yes"), ("no", "否 / No")]
            if field.type == "bool"
            else [(c, c) for c in field.choices]
        )
        chosen = value if isinstance(value, list) else [value]
        if field.type == "bool":
            chosen = ["yes" if value is True else "no" if value is False else ""]
        return "".join(
            f'<label class="opt"><input type="{kind}" name="{name}" value="{escape(v)}"'
            f"{' checked' if v in chosen else ''}{req if kind == 'radio' else ''}> {escape(text)}</label>"
            for v, text in options
        )
    kind = {"number": "number", "date": "date"}.get(field.type, "text")
    step = ' step="any"' if kind == "number" else ""
    shown = "" if value is None else str(value)
    return f'<input type="{kind}" id="q-{name}" name="{name}" value="{escape(shown)}"{step}{req}>'


def form_page(
    form: dict[str, Any],
    fields: dict[str, Any],
    action: str,
    csrf: str,
    values: dict[str, Any],
    errors: dict[str, str],
    ask_identity: bool,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> InboundResponse:
    """The form, prefilled with ``values``, each question's error under it."""
    parts = [f"<h1>{escape(form['title'])}</h1>"]
    if form.get("intro"):
        parts.append(f"<p>{escape(form['intro'])}</p>")
    if errors:
        parts.append(
            '<p class="errs" role="alert">请检查标出的问题 / Please check the answers marked below.'
            + (f"<br>{escape(errors['_form'])}" if "_form" in errors else "")
            + "</p>"
        )
    parts.append(
        f'<form method="post" action="{escape(action)}" accept-charset="utf-8">'
        f'<input type="hidden" name="_csrf" value="{escape(csrf)}">'
    )
    if ask_identity:
        parts.append(
            '<fieldset><label class="q" for="q-_contact">手机号或邮箱 / Phone or e-mail</label>'
            '<input type="text" id="q-_contact" name="_contact" '
            f'value="{escape(str(values.get("_contact", "")))}" '
            'required autocomplete="tel">' + _error(errors, "_contact") + "</fieldset>"
        )
    for q in form["questions"]:
        field = fields.get(q["field"])
        if field is None:
            continue  # the field was deleted after the form was made
        tag = "fieldset" if field.type in ("choice", "multi_choice", "bool") else "div"
        head = (
            f"<legend>{escape(q['label'])}{' *' if q['required'] else ''}</legend>"
            if tag == "fieldset"
            else f'<label class="q" for="q-{escape(q["field"])}">{escape(q["label"])}'
            f"{' *' if q['required'] else ''}</label>"
        )
        parts.append(
            f'<{tag} class="question">{head}{_input(q, field, values.get(q["field"]))}'
            f"{_error(errors, q['field'])}</{tag}>"
        )
    parts.append('<button type="submit">提交 / Submit</button></form>')
    return page(status, form["title"], "".join(parts), headers)


def _error(errors: dict[str, str], key: str) -> str:
    return f'<p class="err" id="err-{escape(key)}">{escape(errors[key])}</p>' if key in errors else ""


def thank_you(form: dict[str, Any]) -> InboundResponse:
    return page(200, form["title"], f'<h1 id="thanks">{escape(form["thank_you"])}</h1>')
