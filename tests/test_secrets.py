"""Secrets (channel credentials, API keys, the secret key) never appear in logs,
errors, repr or API responses, and credentials are encrypted at rest."""

from __future__ import annotations

import logging

import sqlalchemy as sa

CORP_SECRET = "corp-secret-Zq81x0VvT2"
AES_KEY = "aes-key-" + "k" * 35


def test_channel_secrets_never_leave(api, sopflow_app, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    r = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "log",
            "name": "main",
            "config": {"corp_id": "ww123"},
            "secrets": {"corp_secret": CORP_SECRET, "aes_key": AES_KEY},
        },
    )
    assert r.status_code == 201, r.text
    account = r.json()
    assert account["secret_keys"] == ["aes_key", "corp_secret"]
    api.patch(
        f"/api/v1/channel-accounts/{account['id']}", json={"secrets": {"corp_secret": CORP_SECRET + "2"}}
    )
    bodies = [
        r.text,
        api.get("/api/v1/channel-accounts").text,
        api.get(f"/api/v1/channel-accounts/{account['id']}").text,
    ]

    from sopflow.models import ChannelAccount

    with sopflow_app.tx() as s:
        ciphertext = s.scalar(sa.select(ChannelAccount.secrets_ciphertext))
    assert CORP_SECRET not in ciphertext and AES_KEY not in ciphertext

    from sopflow.host import PluginHost

    view = PluginHost(sopflow_app, "default_channels").channel_account(account["id"])
    assert view.secrets["corp_secret"].reveal() == CORP_SECRET + "2"
    assert CORP_SECRET not in repr(view) and CORP_SECRET not in str(view.secrets)

    sopflow_app.log.warning(
        "calling provider",
        url=f"https://x/gettoken?corpsecret={CORP_SECRET}",
        corp_secret=CORP_SECRET,
        detail=f"failed with {AES_KEY}",
    )
    captured = capsys.readouterr()
    everything = "".join(bodies) + captured.out + captured.err + caplog.text
    for secret in (CORP_SECRET, AES_KEY, api.key):
        assert secret not in everything
    assert "***" in captured.err


def test_api_key_not_logged_on_failed_auth(api, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "sfk_" + "w" * 43
    api.as_key(wrong).get("/api/v1/customers")
    api.get("/api/v1/customers")
    captured = capsys.readouterr()
    assert wrong not in captured.out + captured.err + caplog.text
    assert api.key not in captured.out + captured.err + caplog.text


def test_settings_and_errors_hide_the_secret_key(sopflow_app):
    from sopflow.credentials import CredentialBox
    from sopflow_sdk import FatalError, Secret

    key = sopflow_app.settings.secret_key.reveal()
    assert key not in repr(sopflow_app.settings) and key not in repr(sopflow_app.credentials)
    sealed = sopflow_app.credentials.seal({"token": "tok-123456789"})
    other = CredentialBox(Secret("another-key-0123456789"))
    try:
        other.open(sealed)
    except FatalError as exc:
        assert "SOPFLOW_SECRET_KEY" in str(exc) and "tok-123456789" not in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a wrong key must not decrypt")


def test_sdk_errors_redact_known_secrets():
    from sopflow_sdk import RetriableError, Secret

    token = Secret("access-token-abcdef123")
    err = RetriableError(f"request failed: ?access_token={token.reveal()}", retry_after=2)
    assert "access-token-abcdef123" not in str(err) and "***" in str(err)
    assert f"{token}" == "Secret('***')"
