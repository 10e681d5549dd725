"""What a channel declares is checked where users send it: step parameters and
touchpoints when an SOP is saved, account settings when an account is connected.
Every refusal is a 422 naming the problem, and writes nothing."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from sopflow_sdk import (
    Capabilities,
    Channel,
    ChannelSpec,
    SendReceipt,
    Setting,
    SettingsSchema,
    SkippableError,
    hookimpl,
)
from sopflow_sdk.testing.conformance import ChannelConformance, registered_channels

from tests.conftest import row_counts
from tests.sop_support import add_customer, create_sop, run_days

SENT: list[Any] = []
BUILT: list[dict[str, Any]] = []
PASSWORD = "hunter2-very-secret"


class Mailer(Channel):
    """An e-mail-like channel: private chat only, one attachment, a subject per step."""

    name = "mailer"
    capabilities = Capabilities(
        touchpoints=frozenset({"private_chat"}), max_attachments=1, idempotent_send=True
    )

    def __init__(self, config: Any, secrets: Any) -> None:
        BUILT.append(dict(config))

    def send(self, message: Any) -> SendReceipt:
        self.check(message)
        to = message.recipient.get("external_id") or message.recipient.get("customer_id")
        if not to:
            raise SkippableError("no address to send to")
        if message.idempotency_key not in {m.idempotency_key for m in SENT}:
            SENT.append(message)
        return SendReceipt("sent", provider_ref=message.idempotency_key)


MAILER_SETTINGS = SettingsSchema(
    Setting("host", required=True, description="the SMTP server", example="smtp.example.com"),
    Setting("port", "integer", default=587, minimum=1, maximum=65535),
    Setting("security", choices=("starttls", "tls", "none"), default="starttls"),
    Setting("password", secret=True, required=True, description="the SMTP password"),
)
MAILER_PARAMS = SettingsSchema(
    Setting("subject", max_length=200, default="A message from ACME"),
    Setting("priority", "integer", minimum=1, maximum=5),
)


@hookimpl
def register_channels(register: Any) -> None:
    register(ChannelSpec("mailer", Mailer, settings=MAILER_SETTINGS, step_params=MAILER_PARAMS))


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    SENT.clear()
    BUILT.clear()
    return [("mailer", sys.modules[__name__])]


def mail(**extra: Any) -> dict[str, Any]:
    return {"type": "send", "channel": "mailer", "text": "Hi {{ customer.display_name }}", **extra}


def definition(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "new_customer", "steps": [{"delay": "1h", "actions": list(actions)}]}


def problems(r: Any) -> dict[str, str]:
    assert r.status_code == 422, r.text
    return {e["field"]: e["message"] for e in r.json()["errors"]}


# -- step parameters ------------------------------------------------------------------------------


def test_unknown_key_on_a_send_action_is_refused_naming_the_accepted_ones(api, sopflow_app):
    before = row_counts(sopflow_app)
    log_send = {"type": "send", "channel": "log", "text": "hi", "subject": "Hello"}
    r = api.post("/api/v1/sops", json={"name": "x", "definition": definition(log_send, mail(colour="red"))})
    found = problems(r)
    assert "definition.steps[0].actions[0].subject" in found, found
    assert "'log'" in found["definition.steps[0].actions[0].subject"]
    assert "accepted: none" in found["definition.steps[0].actions[0].subject"]
    message = found["definition.steps[0].actions[1].colour"]
    assert "'mailer'" in message and "priority, subject" in message, message
    assert row_counts(sopflow_app) == before


def test_declared_parameters_are_checked_and_reach_the_channel(api, sopflow_app, manual_clock):
    bad = definition(mail(subject="x" * 201, priority=9))
    found = problems(api.post("/api/v1/sops", json={"name": "bad", "definition": bad}))
    assert set(found) == {"definition.steps[0].actions[0].subject", "definition.steps[0].actions[0].priority"}
    assert "200 characters" in found["definition.steps[0].actions[0].subject"]

    r = api.post("/api/v1/channel-accounts", json=account())
    assert r.status_code == 201, r.text
    sop_id = create_sop(api, "welcome", definition(mail(priority=2), mail(subject="Second")))
    stored = api.get(f"/api/v1/sops/{sop_id}").json()["definition"]["steps"][0]["actions"]
    assert stored[0]["subject"] == "A message from ACME" and stored[0]["priority"] == 2  # default filled in
    add_customer(api, "c1")
    run_days(sopflow_app, manual_clock, 1)
    assert [dict(m.params) for m in SENT] == [
        {"subject": "A message from ACME", "priority": 2},
        {"subject": "Second"},
    ]
    # the recipient speaks Identity's words; staff_userid is the older name, kept
    [identity] = SENT[0].recipient["identities"]
    assert identity["external_id"] == "c1" and identity["staff_external_id"] == "zhangsan"
    assert identity["staff_userid"] == "zhangsan"


def test_core_keys_of_the_other_action_are_refused(api, sopflow_app):
    remind = {"type": "remind_staff", "channel": "log", "text": "call", "touchpoint": "staff_notice"}
    send = {"type": "send", "channel": "log", "text": "hi", "forward": True}
    found = problems(api.post("/api/v1/sops", json={"name": "x", "definition": definition(remind, send)}))
    assert set(found) == {
        "definition.steps[0].actions[0].touchpoint",
        "definition.steps[0].actions[1].forward",
    }


def test_a_channel_cannot_declare_a_core_key_or_a_secret_as_a_step_parameter():
    with pytest.raises(ValueError, match="text"):
        ChannelSpec("m", Mailer, step_params=SettingsSchema(Setting("text")))
    with pytest.raises(ValueError, match="secret"):
        ChannelSpec("m", Mailer, step_params=SettingsSchema(Setting("token", secret=True)))


# -- touchpoints and attachments against capabilities ----------------------------------------------


def test_touchpoints_and_attachments_are_checked_against_the_channel(api, sopflow_app):
    before = row_counts(sopflow_app)
    link = {"kind": "link", "url": "https://example.com"}
    actions = (
        mail(touchpoint="moments"),
        mail(attachments=[link, link]),
        {"type": "remind_staff", "channel": "mailer", "text": "call them"},
    )
    found = problems(api.post("/api/v1/sops", json={"name": "x", "definition": definition(*actions)}))
    assert "moments touchpoint" in found["definition.steps[0].actions[0].touchpoint"]
    assert "it declares: private_chat" in found["definition.steps[0].actions[0].touchpoint"]
    assert "at most 1 attachments" in found["definition.steps[0].actions[1].attachments"]
    assert "staff_notice touchpoint" in found["definition.steps[0].actions[2].channel"]
    assert row_counts(sopflow_app) == before


def test_a_touchpoint_the_channel_declares_is_accepted(api):
    ok = definition(mail(touchpoint="private_chat", attachments=[{"kind": "image", "media_id": "m1"}]))
    assert api.post("/api/v1/sops", json={"name": "ok", "definition": ok}).status_code == 201


def account(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "mailer",
        "name": "main",
        "config": {"host": "smtp.example.com"},
        "secrets": {"password": PASSWORD},
    }
    body.update(changes)
    return body


# -- account settings ---------------------------------------------------------------------------------


def test_bad_settings_are_one_422_listing_every_problem_and_writing_nothing(api, sopflow_app):
    before = row_counts(sopflow_app)
    body = account(
        config={"port": "x", "security": "ssl", "password": PASSWORD, "colour": "red"},
        secrets={"pasword": PASSWORD},
    )
    r = api.post("/api/v1/channel-accounts", json=body)
    found = problems(r)
    assert set(found) == {
        "config.host",
        "config.port",
        "config.security",
        "config.password",
        "config.colour",
        "secrets.password",
        "secrets.pasword",
    }, found
    assert "from 1 to 65535" in found["config.port"]
    assert "send it in `secrets`" in found["config.password"]
    assert "accepted: host, port, security" in found["config.colour"]
    assert PASSWORD not in r.text
    assert row_counts(sopflow_app) == before
    assert BUILT == []


def test_good_settings_are_stored_with_defaults_and_secrets_hidden(api, sopflow_app, manual_clock):
    r = api.post("/api/v1/channel-accounts", json=account())
    assert r.status_code == 201, r.text
    assert r.json()["config"] == {"host": "smtp.example.com", "port": 587, "security": "starttls"}
    assert r.json()["secret_keys"] == ["password"] and PASSWORD not in r.text
    account_id = r.json()["id"]

    before = row_counts(sopflow_app)
    bad = api.patch(f"/api/v1/channel-accounts/{account_id}", json={"config": {"host": "h", "port": 0}})
    assert set(problems(bad)) == {"config.port"}
    assert api.get(f"/api/v1/channel-accounts/{account_id}").json()["config"]["host"] == "smtp.example.com"
    bad_secret = api.patch(f"/api/v1/channel-accounts/{account_id}", json={"secrets": {"password": ""}})
    assert set(problems(bad_secret)) == {"secrets.password"}
    assert row_counts(sopflow_app) == before

    ok = api.patch(f"/api/v1/channel-accounts/{account_id}", json={"config": {"host": "mx", "port": 2525}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["config"] == {"host": "mx", "port": 2525, "security": "starttls"}
    listed = api.get("/api/v1/channel-accounts")
    assert PASSWORD not in listed.text and listed.json()[0]["secret_keys"] == ["password"]

    create_sop(api, "welcome", definition(mail()))
    add_customer(api, "c1")
    run_days(sopflow_app, manual_clock, 1)
    assert BUILT[-1] == {"host": "mx", "port": 2525, "security": "starttls"} and len(SENT) == 1


def test_an_account_stored_before_the_declaration_can_still_rotate_its_secret(api, sopflow_app):
    import sqlalchemy as sa
    from sopflow.models import ChannelAccount

    account_id = api.post("/api/v1/channel-accounts", json=account()).json()["id"]
    with sopflow_app.tx() as s:  # as an account connected before the channel declared settings
        s.execute(sa.update(ChannelAccount).values(config={"host": "mx", "legacy": 1}))
    r = api.patch(f"/api/v1/channel-accounts/{account_id}", json={"secrets": {"password": "new-one"}})
    assert r.status_code == 200, r.text
    assert r.json()["config"] == {"host": "mx", "legacy": 1}  # untouched: the PATCH sent no config
    path = f"/api/v1/channel-accounts/{account_id}"
    legacy = {"config": {"host": "mx", "legacy": 1}}
    assert set(problems(api.patch(path, json=legacy))) == {"config.legacy"}
    assert set(problems(api.patch(path, json={"secrets": {"pasword": "x"}}))) == {"secrets.pasword"}


def test_the_openapi_shows_each_channels_settings_with_secrets_hidden(test_client):
    components = test_client.get("/schema/openapi.json").json()["components"]["schemas"]
    config = components["ChannelConfig.mailer"]
    assert config["required"] == ["host"] and config["additionalProperties"] is False
    assert config["properties"]["port"] == {"type": "integer", "minimum": 1, "maximum": 65535, "default": 587}
    assert config["properties"]["security"]["enum"] == ["starttls", "tls", "none"]
    assert config["properties"]["host"]["examples"] == ["smtp.example.com"]
    secrets = components["ChannelSecrets.mailer"]
    assert secrets["required"] == ["password"]
    assert secrets["properties"]["password"]["writeOnly"] is True
    assert secrets["properties"]["password"]["examples"] == ["***"]
    params = components["ChannelStepParams.mailer"]
    assert set(params["properties"]) == {"subject", "priority"}


def test_a_channel_without_declared_settings_takes_any_config(api):
    r = api.post("/api/v1/channel-accounts", json={"channel": "log", "name": "l", "config": {"any": 1}})
    assert r.status_code == 201 and r.json()["config"] == {"any": 1}


def test_settings_records_refuse_bad_declarations():
    with pytest.raises(ValueError, match="lower_snake_case"):
        Setting("Port")
    with pytest.raises(ValueError, match="default"):
        Setting("port", "integer", default="x")
    with pytest.raises(ValueError, match="more than once"):
        SettingsSchema(Setting("a"), Setting("a"))
    assert Setting("token", secret=True, example="real-token").json_schema()["examples"] == ["***"]


def test_a_customer_cap_counts_per_day_week_or_month_and_another_period_is_refused():
    from sopflow_sdk import CustomerCap

    assert CustomerCap(3).period == "day"
    assert CustomerCap(1, "week").period == "week" and CustomerCap(4, "month").period == "month"
    with pytest.raises(ValueError, match="day, week, month"):
        CustomerCap(1, "year")  # type: ignore[arg-type]


# -- the test kit runs time forward ---------------------------------------------------------------------


def test_run_due_delivers_delayed_steps_through_the_public_api_only(api):
    """What a plugin's own test does: no core runner, no broker, no clock internals."""
    from datetime import timedelta

    from sopflow_sdk.testing import run_due

    assert api.post("/api/v1/channel-accounts", json=account()).status_code == 201
    steps = [
        {"delay": "1h", "actions": [mail(subject="first")]},
        {"delay": "2d", "actions": [mail(subject="second")]},
    ]
    create_sop(api, "drip", {"kind": "new_customer", "steps": steps})
    add_customer(api, "c1")
    start = api.get("/api/v1/clock").json()["now"]

    first = run_due(api, by=timedelta(minutes=59))
    assert SENT == [] and first.dispatched == 0
    second = run_due(api, by=timedelta(hours=1))
    assert [m.params["subject"] for m in SENT] == ["first"] and second.stops == 1
    assert second.now - first.now == timedelta(hours=1)
    third = run_due(api, until=second.now + timedelta(days=5))
    assert [m.params["subject"] for m in SENT] == ["first", "second"]
    assert third.dispatched == 1 and api.get("/api/v1/clock").json()["now"] > start
    with pytest.raises(TypeError, match="exactly one"):
        run_due(api)


# -- the conformance suite, with the recipient an e-mail channel needs ------------------------------------


class TestMailerConformance(ChannelConformance):
    @pytest.fixture
    def channel_spec(self) -> ChannelSpec:
        return registered_channels(sys.modules[__name__])["mailer"]

    @pytest.fixture
    def channel_config(self) -> dict[str, Any]:
        return {"host": "smtp.example.com"}

    @pytest.fixture
    def channel_secrets(self) -> dict[str, Any]:
        return {"password": PASSWORD}

    @pytest.fixture
    def recipient(self) -> dict[str, Any]:
        return {"external_id": "ada@example.com"}

    @pytest.fixture
    def deliveries(self) -> Any:
        SENT.clear()
        return lambda: SENT

    def test_the_default_message_takes_the_overridden_recipient_and_declared_defaults(
        self, outbound_message: Any, channel: Any
    ) -> None:
        assert outbound_message.recipient == {"external_id": "ada@example.com"}
        assert outbound_message.params == {"subject": "A message from ACME"}
        assert BUILT[-1] == {"host": "smtp.example.com", "port": 587, "security": "starttls"}


def test_the_suite_catches_an_account_outside_the_declaration_and_a_plain_secret():
    suite = ChannelConformance()
    spec = ChannelSpec("mailer", Mailer, settings=SettingsSchema(Setting("host"), Setting("api_token")))
    with pytest.raises(AssertionError, match=r"api_token.*secret=True"):
        suite.test_secret_looking_settings_are_declared_secret(spec)
    with pytest.raises(AssertionError, match=r"config\.port"):
        suite.test_declared_settings_accept_the_working_account(spec, {"port": 1}, {})
