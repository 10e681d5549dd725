"""The tenant as the API shows and changes it: its default time zone and the
per-customer daily cap of pushed messages that delivery enforces."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from sopflow.engine.customers.tenants import check_timezone
from sopflow.engine.delivery.claim import DEFAULT_DAILY_CAP
from sopflow.errors import InvalidInput
from sopflow.models import Tenant

#: Bounds on the per-customer daily cap of pushed messages (WeCom allows one mass
#: message per customer per day; other channels may allow a few more).
MAX_DAILY_PUSH_CAP = 20


def tenant_to_dict(t: Tenant) -> dict[str, Any]:
    """A tenant with its settings (the daily cap's default when it set none)."""
    return {
        "id": t.id,
        "name": t.name,
        "timezone": t.timezone,
        "customer_daily_push_cap": (t.settings or {}).get("customer_daily_push_cap", DEFAULT_DAILY_CAP),
        "created_at": t.created_at.isoformat(),
    }


def current_tenant(session: Session, tenant_id: int) -> dict[str, Any]:
    """The tenant ``tenant_id`` (the calling key's: it exists)."""
    return tenant_to_dict(session.get_one(Tenant, tenant_id))


def update_tenant(session: Session, tenant_id: int, timezone: str | None, cap: int | None) -> dict[str, Any]:
    """Change the tenant's time zone and daily cap (None: unchanged); both checked first."""
    tenant = session.get_one(Tenant, tenant_id)
    if cap is not None and not 1 <= cap <= MAX_DAILY_PUSH_CAP:
        raise InvalidInput(
            [
                (
                    "customer_daily_push_cap",
                    f"{cap} is out of range; give 1–{MAX_DAILY_PUSH_CAP} pushed messages per "
                    "customer per day (WeCom mass sends allow 1)",
                )
            ]
        )
    if timezone is not None:
        tenant.timezone = check_timezone(timezone)
    if cap is not None:
        tenant.settings = {**(tenant.settings or {}), "customer_daily_push_cap": cap}
    return tenant_to_dict(tenant)
