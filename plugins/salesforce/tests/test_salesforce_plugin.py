"""The distribution and the connection settings checked at account creation."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from sopflow_salesforce import plugin
from sopflow_salesforce.fake import DemoOrg
from sopflow_sdk import ChannelSpec


def test_entry_point_names_the_plugin_module() -> None:
    [ep] = [ep for ep in entry_points(group="sopflow") if ep.name == "salesforce"]
    assert ep.value == "sopflow_salesforce.plugin"
    assert ep.load() is plugin


def test_register_channels_declares_the_settings() -> None:
    specs: list[Any] = []
    plugin.register_channels(specs.append)
    [spec] = specs
    assert isinstance(spec, ChannelSpec) and spec.name == "salesforce"
    assert spec.capabilities.touchpoints == frozenset()
    assert set(spec.settings.secret_names) == {"private_key", "client_secret"}


def test_an_account_with_bad_settings_is_refused_naming_each_field(api: Any) -> None:
    before = api.get("/api/v1/channel-accounts").json()
    r = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "salesforce",
            "name": "crm",
            "config": {"login_url": "not a url", "flow": "password", "sync_interval_seconds": 5},
            "secrets": {},
        },
    )
    assert r.status_code == 422, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"config.login_url", "config.flow", "config.client_id", "config.sync_interval_seconds"}
    assert api.get("/api/v1/channel-accounts").json() == before


def test_each_flow_requires_its_own_secret(api: Any) -> None:
    base = {"login_url": "https://acme.my.salesforce.com", "client_id": "3MVG9"}
    jwt = api.post(
        "/api/v1/channel-accounts",
        json={"channel": "salesforce", "name": "a", "config": {**base, "flow": "jwt_bearer"}, "secrets": {}},
    )
    assert jwt.status_code == 422, jwt.text
    assert {e["field"] for e in jwt.json()["errors"]} == {"config.username", "secrets.private_key"}
    cc = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "salesforce",
            "name": "b",
            "config": {**base, "flow": "client_credentials"},
            "secrets": {},
        },
    )
    assert cc.status_code == 422, cc.text
    assert [e["field"] for e in cc.json()["errors"]] == ["secrets.client_secret"]


def test_a_good_account_is_stored_with_defaults_and_secrets_hidden(api: Any, org: DemoOrg) -> None:
    body = org.account_settings()
    r = api.post("/api/v1/channel-accounts", json=body)
    assert r.status_code == 201, r.text
    config = r.json()["config"]
    assert config["api_version"] == "62.0" and config["sync_interval_seconds"] == 300
    key_line = body["secrets"]["private_key"].splitlines()[1]
    listed = api.get("/api/v1/channel-accounts").text
    assert key_line not in r.text and key_line not in listed


def test_the_credentials_are_encrypted_at_rest(api: Any, org: DemoOrg, sopflow_app: Any) -> None:
    import sqlalchemy as sa
    from sopflow.models import ChannelAccount

    body = org.account_settings("client_credentials")
    assert api.post("/api/v1/channel-accounts", json=body).status_code == 201
    with sopflow_app.tx() as s:
        [stored] = s.scalars(sa.select(ChannelAccount.secrets_ciphertext)).all()
    raw = stored if isinstance(stored, str) else bytes(stored).decode("latin-1")
    assert body["secrets"]["client_secret"] not in raw
