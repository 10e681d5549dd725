"""The hosted form's public page: ``/plugins/forms/f/{account_id}/{slug}``.

``GET`` shows the form (``?t=`` a signed per-customer link, or none: the page
asks for a phone or e-mail).  ``POST`` checks, in order: body size, rate limits
(per address and per link), the CSRF token (a signed token in the form that
must match the nonce cookie set with the page), the link, the answers; then
writes the fields and ``form.submitted`` in one transaction.  Answering again
through the same link edits the same submission.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from sopflow_sdk import (
    Host,
    Identity,
    InboundRequest,
    InboundResponse,
    IngestEvent,
    SopflowError,
    TemplateCall,
)

from sopflow_forms import hosted_html, link_tokens
from sopflow_forms.hosted_answers import check_answers, contact
from sopflow_forms.hosted_defs import SLUG, state_key
from sopflow_forms.inbound import Rejected, account_for, header, log, secret_value
from sopflow_forms.rate_limit import Windows

CHANNEL = "hosted_forms"
MAX_POST = 16 * 1024
PER_IP = Windows(limit=30, seconds=600)
PER_LINK = Windows(limit=10, seconds=600)
COOKIE = "sopflow_form"


def form_link(call: TemplateCall, slug: str) -> str:
    """The template function: a signed link for ``call.customer_id`` to form ``slug``."""
    accounts = [a for a in call.accounts if a.channel == CHANNEL]
    if not accounts:
        raise ValueError(f"connect a {CHANNEL} channel account (public_url, signing_key) first")
    account = accounts[0]
    days = int(account.config.get("link_days") or 14)
    expires = int((call.now + timedelta(days=days)).timestamp())
    token = link_tokens.sign(
        secret_value(account, "signing_key"), {"c": call.customer_id, "s": slug, "x": expires}
    )
    return f"{str(account.config['public_url']).rstrip('/')}/plugins/forms/f/{account.id}/{slug}?t={token}"


def sign_link(account: Any, slug: str, customer_id: int, expires: int) -> str:
    """The ``?t=`` token of a link (for scripts and demos; ``form_link`` uses the same)."""
    return link_tokens.sign(secret_value(account, "signing_key"), {"c": customer_id, "s": slug, "x": expires})


def _subject(request: InboundRequest, key: str, slug: str, now: float) -> int | None:
    """The customer id of a signed link, ``None`` for an anonymous one; refused when forged or expired."""
    token = request.query.get("t", "")
    if not token:
        return None
    claims = link_tokens.verify(key, token)
    if claims is None or claims.get("s") != slug or not isinstance(claims.get("c"), int):
        raise Rejected(403, "this link is not valid (it was changed or belongs to another form)")
    if not isinstance(claims.get("x"), int) or claims["x"] < now:
        raise Rejected(403, "this link has expired; ask for a new one")
    return int(claims["c"])


def _cookie(request: InboundRequest) -> str:
    for part in header(request, "Cookie").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return ""


def _client(request: InboundRequest, account: Any) -> str:
    """The address to rate-limit: the connection's, or behind a proxy the account
    trusts (``trust_forwarded_for``) the first ``X-Forwarded-For`` hop."""
    if account.config.get("trust_forwarded_for"):
        forwarded = header(request, "X-Forwarded-For").split(",")[0].strip()
        if forwarded:
            return forwarded
    return request.remote_addr or "unknown"


def handle(request: InboundRequest, host: Host) -> InboundResponse:
    """The form page (GET) and its submission (POST)."""
    slug = request.path_params.get("slug", "")
    try:
        if len(request.body) > MAX_POST:
            raise Rejected(413, f"the answers are larger than {MAX_POST} bytes")
        if not SLUG.fullmatch(slug):
            raise Rejected(404, "there is no such form")
        account = account_for(host, request, CHANNEL)
        key, now = secret_value(account, "signing_key"), host.now().timestamp()
        form = host.state(account.tenant_id).get(state_key(slug))
        if form is None:
            raise Rejected(404, "there is no such form")
        customer_id = _subject(request, key, slug, now)
        if request.method == "POST":
            link = request.query.get("t") or f"anon:{account.id}:{slug}"
            if not PER_IP.hit(_client(request, account), now) or not PER_LINK.hit(link, now):
                raise Rejected(429, "too many answers in a short time; try again in a few minutes")
            return _submit(request, host, account, form, customer_id, key)
    except Rejected as exc:
        log.warning(
            "inbound_rejected provider=hosted_form status=%s reason=%s path=%s",
            exc.status,
            exc.reason,
            request.path,
        )
        return hosted_html.message(exc.status, "无法打开 / Cannot open", exc.reason)
    return _show(request, host, account, form, customer_id, key, {}, {})


def _show(
    request: InboundRequest,
    host: Host,
    account: Any,
    form: dict[str, Any],
    customer_id: int | None,
    key: str,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> InboundResponse:
    nonce = _cookie(request) or secrets.token_urlsafe(16)
    if customer_id is not None and not values:
        previous = host.state(account.tenant_id).get(f"submission.{form['slug']}.{customer_id}")
        values = dict(previous["answers"]) if previous else {}
    action = request.path + (f"?t={request.query['t']}" if request.query.get("t") else "")
    csrf = link_tokens.sign(key, {"n": nonce, "s": form["slug"]})
    cookie = f"{COOKIE}={nonce}; Path=/plugins/forms/f/; HttpOnly; SameSite=Strict; Max-Age=86400"
    return hosted_html.form_page(
        form,
        dict(host.fields(account.tenant_id)),
        action,
        csrf,
        values,
        errors,
        customer_id is None,
        status,
        headers={"Set-Cookie": cookie},
    )


def _submit(
    request: InboundRequest, host: Host, account: Any, form: dict[str, Any], customer_id: int | None, key: str
) -> InboundResponse:
    try:
        posted = parse_qs(request.body.decode(), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise Rejected(400, "the answers could not be read") from None
    claims = link_tokens.verify(key, (posted.get("_csrf") or [""])[0])
    if (
        claims is None
        or claims.get("s") != form["slug"]
        or not _cookie(request)
        or claims.get("n") != _cookie(request)
    ):
        raise Rejected(403, "the page is out of date or was not sent by this form; open the link again")
    fields = dict(host.fields(account.tenant_id))
    values, errors = check_answers(form, fields, posted)
    identity: tuple[str, str] | None = None
    if customer_id is None:
        identity, problem = contact((posted.get("_contact") or [""])[0])
        if problem:
            errors["_contact"] = problem
    else:
        customer = host.customer(account.tenant_id, customer_id)
        if customer is None or not customer.identities:
            raise Rejected(403, "this link's customer is no longer known")
        identity = (customer.identities[0].channel, customer.identities[0].external_id)
    if errors or identity is None:
        shown = {**{k: v[0] if len(v) == 1 else v for k, v in posted.items()}, **values}
        return _show(request, host, account, form, customer_id, key, shown, errors, status=422)
    try:
        _record(host, account, form, identity, values, customer_id)
    except SopflowError as exc:
        return _show(request, host, account, form, customer_id, key, values, {"_form": exc.user_message}, 422)
    return hosted_html.thank_you(form)


def _record(
    host: Host,
    account: Any,
    form: dict[str, Any],
    identity: tuple[str, str],
    values: dict[str, Any],
    customer_id: int | None,
) -> None:
    """Write the fields and ``form.submitted``; the submission (one per customer and
    form) is kept in the plugin state, its edit count in the event's key."""
    slug = form["slug"]
    with host.transaction(account.tenant_id) as tx:
        subject = f"{identity[0]}:{identity[1]}" if customer_id is None else f"c{customer_id}"
        key = (
            f"submission.{slug}.{customer_id}" if customer_id is not None else f"submission.{slug}.{subject}"
        )
        previous = tx.state.get(key, lock=True) or {"edits": 0}
        edit = int(previous["edits"]) + 1
        tx.ingest(
            [
                IngestEvent(
                    type="form.submitted",
                    identity=Identity(*identity),
                    idempotency_key=f"forms:hosted:{account.id}:{slug}:{subject}:{edit}"[:200],
                    payload={
                        "provider": "hosted",
                        "form_id": slug,
                        "answers": values,
                        "fields": values,
                        "edit": edit,
                    },
                    fields=values,
                )
            ]
        )
        tx.state.set(key, {"answers": values, "edits": edit})
