"""The opportunity board: a column per stage of a journey, cards moved by drag,
keyboard or the card's own form (the API's move, cause ``manual``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Request, Response, get, post
from litestar.response import Redirect

from sopflow.console.forms import back_to
from sopflow.console.render import page
from sopflow.console.sessions import current_user, may_change
from sopflow.console.sign_in import Form
from sopflow.engine.journeys.manage import get_journey
from sopflow.engine.journeys.moves import move_by_hand
from sopflow.engine.journeys.pipelines import stages_of
from sopflow.engine.journeys.views import board
from sopflow.errors import InvalidInput
from sopflow.models import Journey, Pipeline, Staff

PAGE = 20


def _int(raw: str | None, name: str) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput([(name, "give a whole number")]) from None


@get("/", sync_to_thread=False)
def home() -> Redirect:
    return Redirect("/console/board")


@get("/board", sync_to_thread=True)
def board_page(request: Request) -> Response[str]:
    user = current_user(request)
    app = request.app.state.sopflow
    q = request.query_params
    filters = {
        "tag": q.get("tag") or None,
        "owner_staff_id": _int(q.get("owner"), "owner"),
        "q": q.get("q") or None,
    }
    with app.tx() as s:
        journeys = s.execute(
            sa.select(Journey.id, Pipeline.name)
            .join(Pipeline, Pipeline.id == Journey.pipeline_id)
            .where(Journey.tenant_id == user.tenant_id)
            .order_by(Journey.id)
        ).all()
        asked = _int(q.get("journey"), "journey")
        if asked is not None:
            get_journey(s, user.tenant_id, asked)  # another tenant's journey is a 404, not an empty board
        if not journeys:
            return page(
                request, "board.html", journeys=[], view=None, staff=[], filters=filters, journey_id=None
            )
        journey_id = asked or journeys[0][0]
        journey = get_journey(s, user.tenant_id, journey_id)
        view = board(
            s,
            journey,
            limit=PAGE,
            stage_id=_int(q.get("stage"), "stage"),
            cursor=q.get("cursor") or None,
            **filters,
        )
        # every stage for the cards' move menus, also when one column is paged
        all_stages = [{"id": st.id, "name": st.name} for st in stages_of(s, journey.pipeline_id)]
        staff = s.execute(
            sa.select(Staff.id, sa.func.coalesce(sa.func.nullif(Staff.name, ""), Staff.external_id))
            .where(Staff.tenant_id == user.tenant_id)
            .order_by(Staff.id)
        ).all()
    return page(
        request,
        "board.html",
        journeys=journeys,
        journey_id=journey_id,
        view=view,
        all_stages=all_stages,
        staff=staff,
        filters=filters,
    )


@post("/board/move", sync_to_thread=True, status_code=200)
def move_card(request: Request, data: Form) -> Response[Any]:
    """A card moved: JSON for the board's script, a redirect back for the card's form."""
    refused = may_change(request)
    if refused:
        return refused
    user = current_user(request)
    app = request.app.state.sopflow
    customer_id, stage_id = (
        _int(data.get("customer_id"), "customer_id"),
        _int(data.get("stage_id"), "stage_id"),
    )
    if customer_id is None or stage_id is None:
        raise InvalidInput([("customer_id", "name the card and the stage it goes to")])
    with app.tx() as s:
        result, event = move_by_hand(s, user.tenant_id, customer_id, stage_id, "manual", app.now())
    if event:
        app.announce(user.tenant_id, [event])
    if "application/json" in request.headers.get("accept", ""):
        return Response({"moved": result["moved"], "customer_id": customer_id, "stage_id": stage_id})
    return Redirect(back_to(data, "/console/board"), status_code=303)
