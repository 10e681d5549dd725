"""The forecasts the API answers with: the rows loaded in one read-only
transaction, then replayed after it ended, so the replay holds no database
snapshot or lock however long it runs."""

from __future__ import annotations

from typing import Any

from sopflow.engine.context import EngineContext
from sopflow.engine.forecast.calendar import sop_forecast, tenant_forecast
from sopflow.engine.sops.manage import checked_definition, get_sop


def forecast_tenant(ctx: EngineContext, tenant_id: int, days: int, touches: bool) -> dict[str, Any]:
    """``GET /api/v1/forecast``: every started SOP and journey reminder over ``days``."""
    with ctx.read() as s:
        prepared = tenant_forecast(s, ctx, tenant_id, days, touches=touches)
    return prepared.run()


def forecast_sop(
    ctx: EngineContext,
    tenant_id: int,
    sop_id: int,
    days: int,
    definition: dict[str, Any] | None,
    touches: bool,
) -> dict[str, Any]:
    """``POST /api/v1/sops/{id}/forecast``: this SOP (or an unsaved edit of it) against today's data."""
    with ctx.read() as s:
        sop = get_sop(s, tenant_id, sop_id)
        checked = None
        if definition is not None:
            checked = checked_definition(s, ctx, tenant_id, definition, sop.id)
        prepared = sop_forecast(s, ctx, sop, days, checked, touches=touches)
        s.rollback()  # read only: nothing the checks loaded may be flushed
    return prepared.run()
