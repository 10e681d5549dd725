"""The ``forms`` plugin: form providers' pushes become ``form.submitted`` and
the mapped customer fields.

Routes (mounted by core under ``/plugins/forms/``):

- ``jiandaoyun/{account_id}`` — 简道云 数据推送 (``X-JDY-Signature``);
- ``wjx/{account_id}`` — 问卷星 数据推送 (``sign``);
- ``tencent-wj/{account_id}/{token}`` — 腾讯问卷 webhook (unsigned: URL token);
- ``jinshuju/{account_id}/{token}`` — 金数据 数据推送 (unsigned: URL token);
- ``accounts/{account_id}/forms/{form_id}`` — each form's field mapping (admin key);
- ``hosted``, ``hosted/{slug}`` — hosted forms defined through the API (admin key);
- ``f/{account_id}/{slug}`` — a hosted form's page (``{{ form_link("slug") }}`` links here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sopflow_sdk import (
    ChannelSpec,
    Host,
    InboundRequest,
    InboundResponse,
    RouteSpec,
    Setting,
    SettingsSchema,
    SopflowError,
    TemplateFunctionSpec,
    TriggerSpec,
    hookimpl,
)

from sopflow_forms import form_mappings, form_providers, hosted_defs, hosted_routes
from sopflow_forms.form_providers import Submission
from sopflow_forms.inbound import Rejected, account_for, check_size, json_ok, reject, secret_value
from sopflow_forms.sources import inbound_channel

_TOKEN = "a random string of at least 24 characters; put it in the push URL you give the provider"
PROVIDERS: dict[str, tuple[str, SettingsSchema]] = {
    "jiandaoyun": (
        "简道云 数据推送 (signed: X-JDY-Signature)",
        SettingsSchema(
            Setting(
                "secret",
                secret=True,
                required=True,
                min_length=8,
                max_length=128,
                description="the push's 签名密钥 (数据推送 → 推送设置)",
            )
        ),
    ),
    "wjx": (
        "问卷星 数据推送 (signed: sign)",
        SettingsSchema(
            Setting(
                "push_key",
                secret=True,
                required=True,
                min_length=4,
                max_length=128,
                description="the survey's 推送密钥 (数据推送设置)",
            )
        ),
    ),
    "tencent_wj": (
        "腾讯问卷 webhook (unsigned: a token in the URL)",
        SettingsSchema(
            Setting(
                "url_token", secret=True, required=True, min_length=24, max_length=128, description=_TOKEN
            )
        ),
    ),
    "jinshuju": (
        "金数据 数据推送 (unsigned: a token in the URL)",
        SettingsSchema(
            Setting(
                "url_token", secret=True, required=True, min_length=24, max_length=128, description=_TOKEN
            )
        ),
    ),
    hosted_routes.CHANNEL: (
        "hosted forms: where form links point and the key they are signed with",
        SettingsSchema(
            Setting(
                "public_url",
                required=True,
                pattern=r"https?://\S+",
                example="https://sopflow.example.com",
                description="the address customers reach sopflow at (form links are built on it)",
            ),
            Setting(
                "trust_forwarded_for",
                "boolean",
                default=False,
                description="rate-limit by the first X-Forwarded-For address (only behind your own proxy)",
            ),
            Setting(
                "link_days",
                "integer",
                minimum=1,
                maximum=365,
                default=14,
                description="days a per-customer form link stays valid",
            ),
            Setting(
                "signing_key",
                secret=True,
                required=True,
                min_length=32,
                max_length=256,
                description="the HMAC key form links are signed with (changing it breaks links sent)",
            ),
        ),
    ),
}

Reader = Callable[[InboundRequest, Any, Host], Submission | None]


def _receive(provider: str, request: InboundRequest, host: Host, read: Reader) -> InboundResponse:
    """Check size and account, authenticate (``read``), map, ingest one ``form.submitted``."""
    try:
        check_size(request)
        account = account_for(host, request, provider)
        sub = read(request, account, host)
        if sub is None:
            return json_ok({"status": "ignored"})
        mapping = host.state(account.tenant_id).get(form_mappings.state_key(account.id, sub.form_id))
        if mapping is None:
            raise Rejected(
                422,
                f"form {sub.form_id!r} has no field mapping yet; "
                f"PUT /plugins/forms/accounts/{account.id}/forms/{sub.form_id}",
            )
        event = form_mappings.to_event(sub, mapping, account.id)
        try:
            [outcome] = host.ingest(account.tenant_id, [event])
        except SopflowError as exc:
            raise Rejected(422, f"the answer does not fit the mapped fields: {exc.user_message}") from None
    except Rejected as exc:
        return reject(provider, exc, request)
    return json_ok({"status": outcome["status"]})


def handle_jiandaoyun(request: InboundRequest, host: Host) -> InboundResponse:
    return _receive(
        "jiandaoyun",
        request,
        host,
        lambda r, a, h: form_providers.jiandaoyun(r, secret_value(a, "secret"), h.now().timestamp()),
    )


def handle_wjx(request: InboundRequest, host: Host) -> InboundResponse:
    return _receive("wjx", request, host, lambda r, a, h: form_providers.wjx(r, secret_value(a, "push_key")))


def _tokened(read: Callable[[InboundRequest], Submission | None]) -> Reader:
    def check_then_read(request: InboundRequest, account: Any, host: Host) -> Submission | None:
        form_providers.url_token(request, secret_value(account, "url_token"))
        return read(request)

    return check_then_read


def handle_tencent_wj(request: InboundRequest, host: Host) -> InboundResponse:
    return _receive("tencent_wj", request, host, _tokened(form_providers.tencent_wj))


def handle_jinshuju(request: InboundRequest, host: Host) -> InboundResponse:
    return _receive("jinshuju", request, host, _tokened(form_providers.jinshuju))


@hookimpl
def register_channels(register: Callable[[Any], None]) -> None:
    for name, (description, settings) in PROVIDERS.items():
        channel = inbound_channel(name)
        register(
            ChannelSpec(
                name=name,
                factory=channel,
                settings=settings,
                capabilities=channel.capabilities,
                description=f"{description}: receives answers, sends nothing",
            )
        )


@hookimpl
def register_routes(register: Callable[[Any], None]) -> None:
    routes = [
        ("jiandaoyun/{account_id:int}", handle_jiandaoyun, "简道云 data push URL (X-JDY-Signature checked)"),
        ("wjx/{account_id:int}", handle_wjx, "问卷星 data push URL (sign checked)"),
        (
            "tencent-wj/{account_id:int}/{token:str}",
            handle_tencent_wj,
            "腾讯问卷 webhook URL (unsigned by 腾讯问卷: the token in the URL is the only check)",
        ),
        (
            "jinshuju/{account_id:int}/{token:str}",
            handle_jinshuju,
            "金数据 data push URL (unsigned by 金数据: the token in the URL is the only check)",
        ),
    ]
    for path, handler, description in routes:
        register(RouteSpec(path=path, handler=handler, methods=("POST",), description=description))
    register(
        RouteSpec(
            path="accounts/{account_id:int}/forms/{form_id:str}",
            handler=form_mappings.manage,
            methods=("GET", "PUT", "DELETE"),
            description="A provider form's field mapping: provider field ids to sopflow fields "
            "and the identity (admin key)",
        )
    )
    register(
        RouteSpec(
            path="hosted",
            handler=hosted_defs.manage,
            methods=("POST",),
            description="Create a hosted form: title, questions mapped to customer fields, thank-you text "
            "(admin key)",
        )
    )
    register(
        RouteSpec(
            path="hosted/{slug:str}",
            handler=hosted_defs.manage,
            methods=("GET", "PUT"),
            description="Read (GET) or replace (PUT) a hosted form (admin key)",
        )
    )
    register(
        RouteSpec(
            path="f/{account_id:int}/{slug:str}",
            handler=hosted_routes.handle,
            methods=("GET", "POST"),
            description="A hosted form's page (GET) and its answers (POST, form-encoded, CSRF-checked)",
        )
    )


@hookimpl
def register_triggers(register: Callable[[Any], None]) -> None:
    register(
        TriggerSpec(
            "form.submitted",
            "a form was answered; payload.provider, payload.form_id, "
            "payload.answers (by the provider's field ids), payload.fields",
        )
    )


@hookimpl
def register_template_functions(register: Callable[[Any], None]) -> None:
    register(
        TemplateFunctionSpec(
            "form_link",
            fn=hosted_routes.form_link,
            description="a per-customer signed link to a hosted form, with an expiry",
        )
    )
