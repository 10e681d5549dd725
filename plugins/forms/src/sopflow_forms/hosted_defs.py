"""Hosted forms: their definitions, checked against the tenant's customer fields.

A form is kept in the plugin's state (``hosted.<slug>``) and managed with
``POST /plugins/forms/hosted`` and ``GET/PUT /plugins/forms/hosted/{slug}``
(admin key)::

    {"slug": "skin-survey", "title": "Your skin", "intro": "Two questions.",
     "questions": [{"field": "skin_type", "label": "Your skin type", "required": true}],
     "thank_you": "Thank you! Your routine is on its way."}

Each question fills one customer field; its input (text, number, yes/no, date,
one choice, several choices) and its choices come from the field's definition,
read when the form is shown, so a choice added to the field appears at once.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sopflow_sdk import Host, InboundRequest, InboundResponse

from sopflow_forms.inbound import Rejected, json_ok, parse_json, problem

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
MAX_QUESTIONS = 30
ANSWERABLE = ("text", "number", "bool", "date", "choice", "multi_choice")


def state_key(slug: str) -> str:
    return f"hosted.{slug}"


def check_form(
    doc: Any, fields: dict[str, Any], slug: str | None = None
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The form as stored and every problem (``field`` path, ``message`` with the fix)."""
    problems: list[dict[str, str]] = []

    def bad(path: str, message: str) -> None:
        problems.append({"field": path, "message": message})

    if not isinstance(doc, dict):
        return {}, [{"field": "", "message": "give {slug, title, questions, thank_you}"}]
    slug = slug or doc.get("slug")
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        bad("slug", "1-40 lower-case letters, digits and dashes, e.g. 'skin-survey'")
    title = doc.get("title")
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
        bad("title", "a title of 1-200 characters")
    for key, limit in (("intro", 2000), ("thank_you", 2000)):
        if not isinstance(doc.get(key, ""), str) or len(doc.get(key, "")) > limit:
            bad(key, f"text of at most {limit} characters")
    questions = doc.get("questions")
    if not isinstance(questions, list) or not 1 <= len(questions) <= MAX_QUESTIONS:
        bad("questions", f"a list of 1-{MAX_QUESTIONS} questions, each {{field, label?, required?}}")
        questions = []
    clean_q, seen = [], set()
    for i, q in enumerate(questions):
        path = f"questions[{i}]"
        key = q.get("field") if isinstance(q, dict) else None
        definition = fields.get(key) if isinstance(key, str) else None
        if definition is None:
            bad(f"{path}.field", f"a customer field key; known: {', '.join(sorted(fields)) or 'none yet'}")
            continue
        if definition.read_only:
            bad(f"{path}.field", f"{key} is maintained by a plugin; ask for a field of your own")
        elif definition.type not in ANSWERABLE:
            bad(
                f"{path}.field",
                f"{key} is a {definition.type} field; forms ask {', '.join(ANSWERABLE)} fields",
            )
        if key in seen:
            bad(f"{path}.field", f"{key} is asked twice")
        seen.add(key)
        label = q.get("label", "")
        if not isinstance(label, str) or len(label) > 300:
            bad(f"{path}.label", "a question of at most 300 characters")
        clean_q.append(
            {"field": key, "label": label or definition.label or key, "required": bool(q.get("required"))}
        )
    form = {
        "slug": slug,
        "title": (title or "").strip() if isinstance(title, str) else "",
        "intro": doc.get("intro", ""),
        "questions": clean_q,
        "thank_you": doc.get("thank_you") or "Thank you!",
    }
    return form, problems


def _unprocessable(problems: list[dict[str, str]]) -> InboundResponse:
    body = {
        "type": "about:blank",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": "; ".join(f"{p['field']}: {p['message']}" for p in problems),
        "errors": problems,
    }
    return InboundResponse(
        status=422, body=json.dumps(body, ensure_ascii=False), media_type="application/problem+json"
    )


def manage(request: InboundRequest, host: Host) -> InboundResponse:
    """``POST /hosted`` creates, ``PUT /hosted/{slug}`` replaces, ``GET /hosted/{slug}`` reads (admin key)."""
    tenant_id = host.authenticate(request.headers, "admin")
    if tenant_id is None:
        return problem(401, "give an admin API key: Authorization: Bearer <key>")
    slug = request.path_params.get("slug")
    if slug is not None and not SLUG.fullmatch(slug):
        return problem(404, f"no hosted form {slug[:60]!r}; slugs are lower-case letters, digits and dashes")
    state = host.state(tenant_id)
    if request.method == "GET":
        found = state.get(state_key(slug or ""))
        return json_ok(found) if found else problem(404, f"no hosted form {slug!r}")
    try:
        doc = parse_json(request.body)
    except Rejected as exc:
        return problem(exc.status, exc.reason)
    form, problems = check_form(doc, dict(host.fields(tenant_id)), slug)
    if problems:
        return _unprocessable(problems)
    exists = state.get(state_key(form["slug"])) is not None
    if request.method == "POST" and exists:
        return _unprocessable(
            [{"field": "slug", "message": f"{form['slug']} exists; PUT /hosted/{form['slug']}"}]
        )
    if request.method == "PUT" and not exists:
        return problem(404, f"no hosted form {slug!r}; create it with POST /plugins/forms/hosted")
    state.set(state_key(form["slug"]), form)
    return json_ok(form, status=201 if request.method == "POST" else 200)
