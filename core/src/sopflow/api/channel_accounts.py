"""Channel accounts.  Secrets go in encrypted and never come out: responses list
only the names of the stored secrets.

A channel that declares ``ChannelSpec.settings`` has its accounts checked against
them on create and update: every problem is listed in one 422 (messages never
repeat a value), nothing is written, and the stored ``config`` has the defaults
filled in."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs, sopflow_app
from sopflow.api.params import Id
from sopflow.api.schemas import ChannelAccountCreate, ChannelAccountUpdate
from sopflow.app import SopflowApp
from sopflow.conditions.storage import NUL_FIX, nul_paths
from sopflow.errors import Conflict, InvalidInput, NotFound
from sopflow.models import ChannelAccount


def account_to_dict(app: SopflowApp, a: ChannelAccount) -> dict[str, Any]:
    return {
        "id": a.id,
        "channel": a.channel,
        "name": a.name,
        "config": a.config,
        "secret_keys": sorted(app.credentials.open(a.secrets_ciphertext)),
        "created_at": a.created_at.isoformat(),
    }


def _check_channel(app: SopflowApp, s: Any, tenant_id: int, channel: str) -> Any:
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


class ChannelAccountController(Controller):
    path = "/api/v1/channel-accounts"
    tags = ["channel-accounts"]

    @get(
        "/",
        sync_to_thread=True,
        summary="List channel accounts (secrets never shown)",
        guards=[needs("read")],
    )
    def list_accounts(self, request: Request, auth: NamedDependency[Auth]) -> list[dict[str, Any]]:
        app = sopflow_app(request)
        with app.read() as s:
            rows = s.scalars(
                sa.select(ChannelAccount)
                .where(ChannelAccount.tenant_id == auth.tenant_id)
                .order_by(ChannelAccount.id)
            )
            return [account_to_dict(app, a) for a in rows]

    @post(
        "/",
        sync_to_thread=True,
        summary="Connect a channel account; secrets are encrypted at rest",
        guards=[needs("admin")],
    )
    def create(
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[ChannelAccountCreate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        problems = _secret_problems(data.secrets)
        if not data.name.strip() or len(data.name) > 100:
            problems.insert(0, ("name", "a non-empty name of at most 100 characters"))
        with app.tx() as s:
            spec = _check_channel(app, s, auth.tenant_id, data.channel)
            config = _checked_config(spec, data.config, data.secrets, problems)
            if problems:
                raise InvalidInput(problems)
            if s.scalar(
                sa.select(ChannelAccount.id).where(
                    ChannelAccount.tenant_id == auth.tenant_id,
                    ChannelAccount.channel == data.channel,
                    ChannelAccount.name == data.name,
                )
            ):
                raise Conflict(f"a {data.channel} account named {data.name!r} already exists")
            a = ChannelAccount(
                tenant_id=auth.tenant_id,
                channel=data.channel,
                name=data.name,
                config=config,
                secrets_ciphertext=app.credentials.seal(data.secrets),
                created_at=app.now(),
            )
            s.add(a)
            s.flush()
            return account_to_dict(app, a)

    @get("/{account_id:int}", sync_to_thread=True, summary="One channel account", guards=[needs("read")])
    def get_one(self, request: Request, auth: NamedDependency[Auth], account_id: Id) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.read() as s:
            return account_to_dict(app, self._get(s, auth, account_id))

    @patch(
        "/{account_id:int}",
        sync_to_thread=True,
        summary="Rename, reconfigure or rotate secrets",
        guards=[needs("admin")],
    )
    def update(
        self, request: Request, auth: NamedDependency[Auth], account_id: Id, data: ChannelAccountUpdate
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            a = self._get(s, auth, account_id)
            problems = _secret_problems(data.secrets or {})
            if data.name is not None and (not data.name.strip() or len(data.name) > 100):
                problems.append(("name", "a non-empty name of at most 100 characters"))
            current = {k: v.reveal() for k, v in app.credentials.open(a.secrets_ciphertext).items()}
            secrets = {**current, **(data.secrets or {})}
            config = a.config if data.config is None else data.config
            reg = app.plugins.registry.get("register_channels", a.channel)
            if reg is not None and (data.config is not None or data.secrets is not None):
                found: list[tuple[str, str]] = []
                checked = _checked_config(reg.spec, config, secrets, found)
                problems += _about_the_change(found, data.config, data.secrets)
                config = checked if data.config is not None else a.config
            if problems:
                raise InvalidInput(problems)
            if data.name is not None:
                a.name = data.name
            a.config = config
            if data.secrets is not None:
                a.secrets_ciphertext = app.credentials.seal(secrets)
            return account_to_dict(app, a)

    @delete(
        "/{account_id:int}",
        sync_to_thread=True,
        summary="Disconnect a channel account",
        guards=[needs("admin")],
    )
    def remove(self, request: Request, auth: NamedDependency[Auth], account_id: Id) -> None:
        with sopflow_app(request).tx() as s:
            s.delete(self._get(s, auth, account_id))

    @staticmethod
    def _get(s: Any, auth: NamedDependency[Auth], account_id: Id) -> ChannelAccount:
        a = s.scalar(
            sa.select(ChannelAccount).where(
                ChannelAccount.id == account_id, ChannelAccount.tenant_id == auth.tenant_id
            )
        )
        if a is None:
            raise NotFound("channel account", account_id)
        return a
