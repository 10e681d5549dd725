"""The plugin module: entry point, hook registrations, route handler edge cases."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from sopflow_sdk import ChannelSpec, InboundRequest, MigrationsSpec, RouteSpec, TriggerSpec
from sopflow_wecom import plugin
from sopflow_wecom.crypto import WeComCrypto, build_envelope, to_xml
from wecom_support import CALLBACK_AES_KEY, CALLBACK_TOKEN, StubAccount, StubHost

CORP = "wwplugintest0001"


def test_entry_point_names_the_plugin_module() -> None:
    [ep] = [ep for ep in entry_points(group="sopflow") if ep.name == "wecom"]
    assert ep.value == "sopflow_wecom.plugin"
    assert ep.load() is plugin


def test_register_routes_and_triggers() -> None:
    routes: list[Any] = []
    triggers: list[Any] = []
    plugin.register_routes(routes.append)
    plugin.register_triggers(triggers.append)
    assert all(isinstance(r, RouteSpec) for r in routes)
    by_path = {r.path: set(r.methods) for r in routes}
    assert by_path == {
        "callback/{account_id:int}": {"GET", "POST"},
        "accounts/{account_id:int}/live-codes": {"GET", "POST"},
        "accounts/{account_id:int}/live-codes/{config_id:str}": {"PATCH", "DELETE"},
        "accounts/{account_id:int}/live-codes/sync": {"POST"},
        "accounts/{account_id:int}/import": {"GET", "POST"},
        "accounts/{account_id:int}/archive": {"GET"},
        "accounts/{account_id:int}/archive/pull": {"POST"},
        "accounts/{account_id:int}/transfers": {"GET", "POST"},
        "sidebar/{account_id:int}": {"GET"},
        "sidebar/{account_id:int}/config": {"GET"},
        "sidebar/{account_id:int}/customer": {"GET", "POST"},
        "sidebar/{account_id:int}/touches/{touch_id:int}/sent": {"POST"},
        "sidebar/{account_id:int}/touches/{touch_id:int}/skip": {"POST"},
        "sidebar/{account_id:int}/sign-out": {"POST"},
        "sidebar/{account_id:int}/sidebar.js": {"GET"},
    }
    assert all(isinstance(t, TriggerSpec) for t in triggers)
    assert "group.member_joined" in {t.event_type for t in triggers}
    assert "customer.added" not in {t.event_type for t in triggers}  # core's vocabulary
    assert "customer.imported" not in {t.event_type for t in triggers}  # standard since the import landed


def _request(method: str, query: dict[str, str], body: bytes = b"", account: str = "7") -> InboundRequest:
    return InboundRequest(
        method=method,
        path=f"/plugins/wecom/callback/{account}",
        query=query,
        headers={},
        body=body,
        path_params={"account_id": account},
    )


def test_handler_get_and_post_without_http() -> None:
    host = StubHost(StubAccount(CORP))
    crypto = WeComCrypto(CALLBACK_TOKEN, CALLBACK_AES_KEY, CORP)
    echostr, sig, ts, nonce = crypto.encrypt("1288432023552776189")
    answer = plugin.handle_callback(
        _request("GET", {"msg_signature": sig, "timestamp": ts, "nonce": nonce, "echostr": echostr}), host
    )
    assert (answer.status, answer.body) == (200, "1288432023552776189")

    xml = to_xml(
        {
            "ToUserName": CORP,
            "FromUserName": "sys",
            "CreateTime": 1700000000,
            "MsgType": "event",
            "Event": "change_external_contact",
            "ChangeType": "del_follow_user",
            "UserID": "u1",
            "ExternalUserID": "wm1",
        }
    )
    encrypted, sig, ts, nonce = crypto.encrypt(xml)
    body = build_envelope(CORP, encrypted, "1000002").encode()
    query = {"msg_signature": sig, "timestamp": ts, "nonce": nonce}
    assert plugin.handle_callback(_request("POST", query, body), host).status == 200
    assert [e.type for _, e in host.events] == ["customer.churned"]


def test_handler_refuses_other_corps_and_bad_accounts() -> None:
    host = StubHost(StubAccount(CORP))
    other = WeComCrypto(CALLBACK_TOKEN, CALLBACK_AES_KEY, "wwsomeoneelse")
    encrypted, sig, ts, nonce = other.encrypt("<xml/>")
    query = {"msg_signature": sig, "timestamp": ts, "nonce": nonce}
    body = build_envelope("wwsomeoneelse", encrypted).encode()
    refused = plugin.handle_callback(_request("POST", query, body), host)
    assert refused.status == 403 and CALLBACK_TOKEN not in str(refused.body)
    assert plugin.handle_callback(_request("POST", query, body, account="abc"), host).status == 404
    xxe = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>'
    assert plugin.handle_callback(_request("POST", query, xxe), host).status == 403
    assert host.events == []


def test_handler_reports_missing_account_settings() -> None:
    account = StubAccount(CORP)
    account.secrets = {}
    crypto = WeComCrypto(CALLBACK_TOKEN, CALLBACK_AES_KEY, CORP)
    encrypted, sig, ts, nonce = crypto.encrypt("<xml/>")
    query = {"msg_signature": sig, "timestamp": ts, "nonce": nonce}
    answer = plugin.handle_callback(
        _request("POST", query, build_envelope(CORP, encrypted).encode()), StubHost(account)
    )
    assert answer.status == 404
    assert "secrets.callback_token" in str(answer.body) and "secrets.encoding_aes_key" in str(answer.body)


def test_register_jobs() -> None:
    jobs: list[Any] = []
    plugin.register_jobs(jobs.append)
    assert {j.name for j in jobs} == {
        "wecom.fetch_profile",
        "wecom.import_contacts",
        "wecom.mark_tags",
        "wecom.resync_tags",
        "wecom.archive.pull",
        "wecom.transfer_start",
        "wecom.transfer_finish",
        "wecom.moments_poll",
    }


def test_register_channels() -> None:
    channels: list[Any] = []
    plugin.register_channels(channels.append)
    [spec] = channels
    assert isinstance(spec, ChannelSpec) and spec.name == "wecom"
    assert spec.factory.capabilities.needs_staff_confirmation


def test_register_migrations_points_at_the_plugins_branch() -> None:
    specs: list[Any] = []
    plugin.register_migrations(specs.append)
    [spec] = specs
    assert isinstance(spec, MigrationsSpec)
    assert sorted(p.name for p in Path(spec.directory).glob("*.py")) == [
        "0001_live_codes_and_corp_tags.py",
        "0002_transfers.py",
    ]
    assert set(spec.metadata.tables) == {"wecom_live_codes", "wecom_corp_tags", "wecom_transfers"}


def test_an_account_with_bad_settings_is_refused_with_every_problem(api: Any) -> None:
    """The plugin declares its settings (``WECOM_SETTINGS``): core checks an account
    against them before anything is stored, and never repeats a secret."""
    secret = "app-secret-0123456789"
    before = api.get("/api/v1/channel-accounts").json()
    r = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "wecom",
            "name": "main",
            "config": {"agent_id": "1000002", "secret": secret},
            "secrets": {"encoding_aes_key": "too-short"},
        },
    )
    assert r.status_code == 422, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {
        "config.corp_id",
        "config.agent_id",
        "config.secret",
        "secrets.secret",
        "secrets.encoding_aes_key",
    }
    assert secret not in r.text and "too-short" not in r.text
    assert api.get("/api/v1/channel-accounts").json() == before

    ok = api.post(
        "/api/v1/channel-accounts",
        json={"channel": "wecom", "name": "main", "config": {"corp_id": CORP}, "secrets": {"secret": secret}},
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["config"] == {
        "corp_id": CORP,
        "create_missing_tags": False,
        "callback_max_age_seconds": 300,
        # the conversation archive's settings, off until an operator turns it on
        "archive_enabled": False,
        "archive_pull_seconds": 60,
        "archive_fetch_media": False,
        "archive_require_consent": False,
    }
