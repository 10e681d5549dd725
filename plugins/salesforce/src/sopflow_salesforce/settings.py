"""A Salesforce connection's settings: a ``salesforce`` channel account.

Why a channel account rather than an account type of our own: core already
validates an account's settings at creation (one 422 listing every problem),
encrypts its secrets at rest, keeps them out of every response, lets a tenant
switch the plugin off, and hands jobs and routes the decrypted account through
``host.channel_accounts``.  A Salesforce connection needs all of that and no
new machinery; it just never sends a message (``SalesforceConnection.send``
refuses).

The one thing ``SettingsSchema`` cannot say on its own is that which secrets are
required depends on the OAuth flow; ``ConnectionSettings.check`` adds those
problems, phrased so a PATCH that rotates a secret is judged like a POST.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopflow_sdk import Setting, SettingsSchema

FLOWS = ("jwt_bearer", "client_credentials")


class ConnectionSettings(SettingsSchema):
    """The declared settings plus the flow's own requirements."""

    def check(  # type: ignore[override]
        self,
        config: Mapping[str, Any],
        secrets: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        out, problems = super().check(config, secrets, **kwargs)
        if secrets is None or out.get("flow") not in FLOWS:
            return out, problems
        secrets_path = kwargs.get("secrets_path", "secrets")
        config_path = kwargs.get("config_path", "config")

        def given(name: str) -> bool:
            value = secrets.get(name)
            value = value.reveal() if hasattr(value, "reveal") else value
            return bool(value)

        if out["flow"] == "jwt_bearer":
            if not out.get("username"):
                problems.append(
                    (
                        f"{config_path}.username",
                        "required with flow jwt_bearer: the integration user's username",
                    )
                )
            if not given("private_key"):
                problems.append(
                    (
                        f"{secrets_path}.private_key",
                        "required with flow jwt_bearer: the PEM private key whose certificate "
                        "is uploaded to the connected app (a secret)",
                    )
                )
        elif not given("client_secret"):
            problems.append(
                (
                    f"{secrets_path}.client_secret",
                    "required with flow client_credentials: the connected app's consumer secret (a secret)",
                )
            )
        return out, problems


SALESFORCE_SETTINGS = ConnectionSettings(
    Setting(
        "login_url",
        required=True,
        pattern=r"https?://[^\s/]+(:\d+)?/?",
        example="https://mycompany.my.salesforce.com",
        description="the token endpoint's host: your My Domain URL, https://login.salesforce.com "
        "or https://test.salesforce.com for a sandbox",
    ),
    Setting(
        "flow",
        required=True,
        choices=FLOWS,
        description="the OAuth 2.0 flow: jwt_bearer (a certificate) or client_credentials (a secret)",
    ),
    Setting(
        "client_id",
        required=True,
        min_length=1,
        max_length=256,
        description="the connected app's consumer key",
    ),
    Setting("username", max_length=256, description="the integration user (jwt_bearer only)"),
    Setting(
        "api_version",
        default="62.0",
        pattern=r"\d{2,3}\.0",
        description="the REST API version, e.g. 62.0",
    ),
    Setting(
        "sync_interval_seconds",
        "integer",
        default=300,
        minimum=30,
        maximum=86400,
        description="how often the incremental sync reads Salesforce's changes",
    ),
    Setting(
        "limit_share",
        "number",
        default=0.8,
        minimum=0.1,
        maximum=1.0,
        description="share of the daily API allocation past which the connector slows down",
    ),
    Setting("private_key", secret=True, max_length=4096, description="PEM private key (jwt_bearer)"),
    Setting("client_secret", secret=True, max_length=256, description="consumer secret (client_credentials)"),
)
