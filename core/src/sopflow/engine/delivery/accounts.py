"""Channel accounts as the API lists, connects, changes and disconnects them.
Secrets go in encrypted and never come out: an account shows only the names of
its stored secrets.

A channel that declares ``ChannelSpec.settings`` has its accounts checked against
them on create and update: every problem is listed in one 422 (messages never
repeat a value), nothing is written, and the stored ``config`` has the defaults
filled in."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.conditions.storage import NUL_FIX, nul_paths
from sopflow.engine.context import EngineContext
from sopflow.errors import Conflict, InvalidInput, NotFound
from sopflow.models import ChannelAccount


def account_to_dict(app: EngineContext, a: ChannelAccount) -> dict[str, Any]:
    """An account as the API shows it: the names of its secrets, never their values."""
    return {
        "id": a.id,
        "channel": a.channel,
        "name": a.name,
        "config": a.config,
        "secret_keys": sorted(app.credentials.open(a.secrets_ciphertext)),
        "created_at": a.created_at.isoformat(),
    }


def _check_channel(app: EngineContext, s: Session, tenant_id: int, channel: str) -> Any:
    """The channel's ``ChannelSpec``; ``InvalidInput`` unless installed and enabled."""
    reg = app.plugins.registry.get("register_channels", channel)
    if reg is None:
        names = sorted(r.spec.name for r in app.plugins.registry.all("register_channels"))
        raise InvalidInput(
            [("channel", f"no channel {channel!r} is installed; installed: {', '.join(names)}")]
        )
    if not app.plugin_enabled(s, tenant_id, reg.plugin):
        raise InvalidInput(
            [
                (
                    "channel",
                    f"channel {channel!r} comes from plugin '{reg.plugin}', which is "
                    f"disabled for this tenant; enable it with PUT /api/v1/plugins/{reg.plugin}",
                )
            ]
        )
    return reg.spec


def _secret_problems(secrets: dict[str, str]) -> list[tuple[str, str]]:
    """Each secret that is not a string of at most 4096 characters."""
    bad = [k for k, v in secrets.items() if not k or not isinstance(v, str) or len(v) > 4096]
    return [(f"secrets.{k}", "a secret is a string of at most 4096 characters") for k in bad]


def _checked_config(
    spec: Any, config: dict[str, Any], secrets: dict[str, Any], problems: list[tuple[str, str]]
) -> dict[str, Any]:
    """The config to store: checked against the channel's declared settings (defaults
    filled in), or as given when the channel declares none."""
    problems.extend((at, NUL_FIX) for at in nul_paths(config, "config"))
    if spec.settings is None:
        return config
    checked, found = spec.settings.check(config, secrets)
    problems.extend(found)
    return checked


def _about_the_change(
    found: list[tuple[str, str]], config: dict[str, Any] | None, secrets: dict[str, str] | None
) -> list[tuple[str, str]]:
    """The problems a PATCH is answerable for: with the config it sends, and with
    the secrets it sends (or requires).  An account stored before its channel
    declared settings can still have a secret rotated or its config replaced."""

    def answerable(path: str, message: str) -> bool:
        part, _, key = path.partition(".")
        if part == "config":
            return config is not None
        return secrets is not None and (key in secrets or message.startswith("required"))

    return [(path, message) for path, message in found if answerable(path, message)]


def list_accounts(app: EngineContext, session: Session, tenant_id: int) -> list[dict[str, Any]]:
    """The tenant's channel accounts, oldest first."""
    rows = session.scalars(
        sa.select(ChannelAccount).where(ChannelAccount.tenant_id == tenant_id).order_by(ChannelAccount.id)
    )
    return [account_to_dict(app, a) for a in rows]


def get_account(session: Session, tenant_id: int, account_id: int) -> ChannelAccount:
    """The tenant's account ``account_id``, else ``NotFound``."""
    a = session.scalar(
        sa.select(ChannelAccount).where(
            ChannelAccount.id == account_id, ChannelAccount.tenant_id == tenant_id
        )
    )
    if a is None:
        raise NotFound("channel account", account_id)
    return a


def create_account(
    app: EngineContext,
    session: Session,
    tenant_id: int,
    channel: str,
    name: str,
    config: dict[str, Any],
    secrets: dict[str, str],
) -> dict[str, Any]:
    """Connect an account of an installed, enabled channel; its settings checked, its secrets sealed."""
    problems = _secret_problems(secrets)
    if not name.strip() or len(name) > 100:
        problems.insert(0, ("name", "a non-empty name of at most 100 characters"))
    spec = _check_channel(app, session, tenant_id, channel)
    checked = _checked_config(spec, config, secrets, problems)
    if problems:
        raise InvalidInput(problems)
    if session.scalar(
        sa.select(ChannelAccount.id).where(
            ChannelAccount.tenant_id == tenant_id,
            ChannelAccount.channel == channel,
            ChannelAccount.name == name,
        )
    ):
        raise Conflict(f"a {channel} account named {name!r} already exists")
    a = ChannelAccount(
        tenant_id=tenant_id,
        channel=channel,
        name=name,
        config=checked,
        secrets_ciphertext=app.credentials.seal(secrets),
        created_at=app.now(),
    )
    session.add(a)
    session.flush()
    return account_to_dict(app, a)


def update_account(
    app: EngineContext,
    session: Session,
    tenant_id: int,
    account_id: int,
    name: str | None,
    config: dict[str, Any] | None,
    secrets: dict[str, str] | None,
) -> dict[str, Any]:
    """Rename, reconfigure or rotate secrets (None: unchanged); a secret sent replaces that one only."""
    a = get_account(session, tenant_id, account_id)
    problems = _secret_problems(secrets or {})
    if name is not None and (not name.strip() or len(name) > 100):
        problems.append(("name", "a non-empty name of at most 100 characters"))
    current = {k: v.reveal() for k, v in app.credentials.open(a.secrets_ciphertext).items()}
    merged = {**current, **(secrets or {})}
    stored = a.config if config is None else config
    reg = app.plugins.registry.get("register_channels", a.channel)
    if reg is not None and (config is not None or secrets is not None):
        found: list[tuple[str, str]] = []
        checked = _checked_config(reg.spec, stored, merged, found)
        problems += _about_the_change(found, config, secrets)
        stored = checked if config is not None else a.config
    if problems:
        raise InvalidInput(problems)
    if name is not None:
        a.name = name
    a.config = stored
    if secrets is not None:
        a.secrets_ciphertext = app.credentials.seal(merged)
    return account_to_dict(app, a)


def delete_account(session: Session, tenant_id: int, account_id: int) -> None:
    """Disconnect the tenant's account ``account_id``."""
    session.delete(get_account(session, tenant_id, account_id))
