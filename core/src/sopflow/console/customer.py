"""One customer: fields edited by type (validated by the engine as for the API,
errors at the field, nothing changed), tags, identities, owner, stage history,
enrolments with their touches, and the event timeline with who made each change."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Request, Response, get, post
from litestar.response import Redirect

from sopflow.console.render import page
from sopflow.console.sessions import current_user, may_change
from sopflow.console.sign_in import Form
from sopflow.engine.customers.changes import edit_customer
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.customers.form_values import field_changes, tag_changes
from sopflow.engine.customers.ingest import event_to_dict
from sopflow.engine.customers.records import customer_to_dict, get_customer
from sopflow.engine.journeys.pipelines import stage_history
from sopflow.engine.sops.listing import touch_to_dict
from sopflow.errors import InvalidInput
from sopflow.models import Enrollment, Event, Sop, Staff, Stage, Touch

TIMELINE = 50


def customer_view(s: Any, app: Any, tenant_id: int, customer_id: int) -> dict[str, Any]:
    """Everything the customer page shows, read in one transaction."""
    customer = get_customer(s, tenant_id, customer_id)
    shown = customer_to_dict(s, customer)
    defs = field_definitions(s, tenant_id, app.plugins)
    stage_names = dict(s.execute(sa.select(Stage.id, Stage.name).where(Stage.tenant_id == tenant_id)).all())
    history = [
        {**h, "stage": stage_names.get(h["stage_id"], h["stage_id"])}
        for h in stage_history(s, tenant_id, customer_id)
    ]
    enrollments = s.execute(
        sa.select(Enrollment, Sop.name)
        .join(Sop, Sop.id == Enrollment.sop_id)
        .where(Enrollment.tenant_id == tenant_id, Enrollment.customer_id == customer_id)
        .order_by(Enrollment.id.desc())
    ).all()
    touches: dict[int, list[dict[str, Any]]] = {}
    for t in s.scalars(
        sa.select(Touch)
        .where(Touch.enrollment_id.in_([e.id for e, _ in enrollments]))
        .order_by(Touch.step_index)
    ):
        touches.setdefault(t.enrollment_id, []).append(touch_to_dict(t))
    events = [
        event_to_dict(e)
        for e in s.scalars(
            sa.select(Event)
            .where(Event.tenant_id == tenant_id, Event.customer_id == customer_id)
            .order_by(Event.id.desc())
            .limit(TIMELINE)
        )
    ]
    owner = s.get(Staff, customer.owner_staff_id) if customer.owner_staff_id else None
    return {
        "customer": shown,
        "defs": sorted(defs.values(), key=lambda d: d.key),
        "history": history,
        "enrollments": [
            {
                "id": e.id,
                "sop": name,
                "sop_id": e.sop_id,
                "status": e.status,
                "touches": touches.get(e.id, []),
            }
            for e, name in enrollments
        ],
        "events": events,
        "owner": (owner.name or owner.external_id) if owner else None,
    }


def _shown_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _render(request: Request, view: dict[str, Any], *, status: int = 200, **extra: Any) -> Response[str]:
    return page(request, "customer.html", status=status, shown_value=_shown_value, **view, **extra)


@get("/customers/{customer_id:int}", sync_to_thread=True)
def customer_page(request: Request, customer_id: int) -> Response[str]:
    user = current_user(request)
    app = request.app.state.sopflow
    with app.tx() as s:
        view = customer_view(s, app, user.tenant_id, customer_id)
    return _render(request, view, errors={}, typed={}, saved=request.query_params.get("saved") == "1")


@post("/customers/{customer_id:int}", sync_to_thread=True)
def customer_save(request: Request, customer_id: int, data: Form) -> Response[Any]:
    refused = may_change(request)
    if refused:
        return refused
    user = current_user(request)
    app = request.app.state.sopflow
    try:
        with app.tx() as s:
            current = customer_to_dict(s, get_customer(s, user.tenant_id, customer_id))
            defs = field_definitions(s, user.tenant_id, app.plugins)
            body: dict[str, Any] = {}
            fields = field_changes(data, defs, current["fields"])
            if fields:
                body["fields"] = fields
            if "display_name" in data and data["display_name"] != current["display_name"]:
                body["display_name"] = data["display_name"]
            added, removed = tag_changes(data.get("tags", ""), current["tags"])
            if added:
                body["tags_add"] = added
            if removed:
                body["tags_remove"] = removed
            if body:
                _, event = edit_customer(
                    s,
                    app.plugins,
                    user.tenant_id,
                    customer_id,
                    body,
                    app.now(),
                    source="console",
                    actor=user.actor,
                )
            else:
                event = None
    except InvalidInput as exc:
        with app.tx() as s:
            view = customer_view(s, app, user.tenant_id, customer_id)
        errors = {e["field"]: e["message"] for e in exc.errors}
        # the tags are one input: a problem with any tag added or removed is shown there
        tag_problems = [m for f, m in errors.items() if f.startswith(("tags_add", "tags_remove"))]
        if tag_problems:
            errors["tags"] = tag_problems[0]
        return _render(request, view, status=422, errors=errors, typed=dict(data), saved=False)
    if event:
        app.announce(user.tenant_id, [event])
    return Redirect(f"/console/customers/{customer_id}?saved=1", status_code=303)
