"""SOPs: the list, the data page (per step, conversion, the daily chart, the
customers with their status, manual end) and the editor (JSON definition with
errors at their paths, the audience preview, start and stop)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from litestar import Request, Response, get, post
from litestar.response import Redirect

from sopflow.console.chart import daily_chart
from sopflow.console.labels import labels_for
from sopflow.console.render import language, page
from sopflow.console.sessions import current_user, may_change
from sopflow.console.sign_in import Form
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.customers.form_values import tag_changes
from sopflow.engine.sops.definition import HIDDEN_KIND
from sopflow.engine.sops.listing import enrollment_page
from sopflow.engine.sops.manage import (
    audience_count,
    check_definition,
    end_manually,
    get_sop,
    sop_to_dict,
    start_sop,
    stop_sop,
    update_sop,
)
from sopflow.engine.sops.stats import daily_activity, sop_stats
from sopflow.errors import Conflict, InvalidInput
from sopflow.models import Customer, Sop

CHART_DAYS = 14


@get("/sops", sync_to_thread=True)
def sops_page(request: Request) -> Response[str]:
    user = current_user(request)
    with request.app.state.sopflow.tx() as s:
        rows = s.scalars(
            sa.select(Sop).where(Sop.tenant_id == user.tenant_id, Sop.kind != HIDDEN_KIND).order_by(Sop.id)
        )
        sops = [{"id": x.id, "name": x.name, "kind": x.kind, "status": x.status} for x in rows]
    return page(request, "sops.html", sops=sops)


def _data_view(s: Any, app: Any, tenant_id: int, sop_id: int, cursor: str | None) -> dict[str, Any]:
    sop = get_sop(s, tenant_id, sop_id)
    enrolled = enrollment_page(s, tenant_id, sop_id, cursor, 50)
    names = dict(
        s.execute(
            sa.select(Customer.id, Customer.display_name).where(
                Customer.id.in_([e["customer_id"] for e in enrolled["items"]])
            )
        ).all()
    )
    return {
        "sop": sop_to_dict(s, sop),
        "stats": sop_stats(s, sop),
        "days": daily_activity(s, sop, app.now(), CHART_DAYS),
        "enrolled": enrolled,
        "names": names,
    }


@get("/sops/{sop_id:int}", sync_to_thread=True)
def sop_data_page(request: Request, sop_id: int) -> Response[str]:
    user = current_user(request)
    app = request.app.state.sopflow
    with app.tx() as s:
        view = _data_view(s, app, user.tenant_id, sop_id, request.query_params.get("cursor"))
    t = labels_for(language(request))
    chart = daily_chart(view["days"], t["per_day"], t["sent"], t["converted"])
    return page(request, "sop_data.html", chart=chart, error=None, **view)


@post("/sops/{sop_id:int}/enrollments/{enrollment_id:int}/end", sync_to_thread=True)
def end_enrollment_post(request: Request, sop_id: int, enrollment_id: int, data: Form) -> Response[Any]:
    refused = may_change(request)
    if refused:
        return refused
    user = current_user(request)
    app = request.app.state.sopflow
    tags, _ = tag_changes(data.get("tags_add", ""), [])
    flow_raw = data.get("flow_to", "").strip()
    try:
        if flow_raw and not flow_raw.isdigit():
            raise InvalidInput([("flow_to", "the id of a nurture SOP of this tenant")])
        with app.tx() as s:
            get_sop(s, user.tenant_id, sop_id)
            fields = field_definitions(s, user.tenant_id, app.plugins)
            end_manually(
                s,
                user.tenant_id,
                enrollment_id,
                app.now(),
                fields,
                tags,
                int(flow_raw) if flow_raw else None,
                app,
            )
    except (InvalidInput, Conflict) as exc:
        with app.tx() as s:
            view = _data_view(s, app, user.tenant_id, sop_id, None)
        t = labels_for(language(request))
        chart = daily_chart(view["days"], t["per_day"], t["sent"], t["converted"])
        return page(
            request,
            "sop_data.html",
            status=422 if isinstance(exc, InvalidInput) else 409,
            chart=chart,
            error=str(exc),
            **view,
        )
    return Redirect(f"/console/sops/{sop_id}", status_code=303)


def _editor(
    request: Request, sop: dict[str, Any], text: str, *, status: int = 200, **extra: Any
) -> Response[str]:
    context = {"errors": [], "count": None, "checked": False, **extra}
    return page(request, "sop_editor.html", status=status, sop=sop, text=text, **context)


@get("/sops/{sop_id:int}/edit", sync_to_thread=True)
def sop_editor_page(request: Request, sop_id: int) -> Response[str]:
    user = current_user(request)
    with request.app.state.sopflow.tx() as s:
        sop = sop_to_dict(s, get_sop(s, user.tenant_id, sop_id))
    return _editor(request, sop, json.dumps(sop["definition"], indent=2, ensure_ascii=False))


@post("/sops/{sop_id:int}/edit", sync_to_thread=True)
def sop_editor_post(request: Request, sop_id: int, data: Form) -> Response[Any]:
    """``action=check``: validate and count the audience, write nothing; ``action=save``: save."""
    user = current_user(request)
    app = request.app.state.sopflow
    text = data.get("definition", "")
    saving = data.get("action") == "save"
    if saving:
        refused = may_change(request)
        if refused:
            return refused
    with app.tx() as s:
        sop = sop_to_dict(s, get_sop(s, user.tenant_id, sop_id))
    try:
        definition = json.loads(text)
    except ValueError as exc:
        return _editor(request, sop, text, status=422, errors=[("definition", f"not JSON: {exc}")])
    try:
        with app.tx() as s:
            row = get_sop(s, user.tenant_id, sop_id, lock=saving)
            checked = check_definition(s, app, user.tenant_id, definition, sop_id)
            fields = field_definitions(s, user.tenant_id, app.plugins)
            count = audience_count(s, user.tenant_id, checked.get("target") or {}, fields, app.now())
            if saving:
                update_sop(s, app, row, None, definition, app.now())
    except InvalidInput as exc:
        errors = [(e["field"], e["message"]) for e in exc.errors]
        return _editor(request, sop, text, status=422, errors=errors)
    if saving:
        return Redirect(f"/console/sops/{sop_id}/edit", status_code=303)
    return _editor(request, sop, text, count=count, checked=True)


@post("/sops/{sop_id:int}/{action:str}", sync_to_thread=True)
def sop_switch(request: Request, sop_id: int, action: str) -> Response[Any]:
    """Start or stop, as the API does (a nurture SOP's audience is enrolled in the background)."""
    refused = may_change(request)
    if refused:
        return refused
    if action not in ("start", "stop"):
        raise InvalidInput([("action", "use start or stop")])
    user = current_user(request)
    app = request.app.state.sopflow
    with app.tx() as s:
        sop = get_sop(s, user.tenant_id, sop_id, lock=True)
        if sop.kind == HIDDEN_KIND:
            raise Conflict("this SOP sends a journey's stage reminders; start or stop its journey")
        if action == "start":
            start_sop(s, sop, app.now())
        else:
            stop_sop(s, sop, app.now(), field_definitions(s, user.tenant_id, app.plugins))
        nurture = action == "start" and sop.kind == "nurture"
    if nurture:
        app.enqueue_after_commit("audience", user.tenant_id, sop_id)
    return Redirect(f"/console/sops/{sop_id}", status_code=303)
