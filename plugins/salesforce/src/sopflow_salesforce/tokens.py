"""Access tokens for a Salesforce connection, obtained by our code for both flows.

JWT bearer: a short-lived assertion (``iss`` consumer key, ``sub`` user, ``aud``
login URL, ``exp`` three minutes out) signed RS256 with the account's private
key by PyJWT, exchanged at ``{login_url}/services/oauth2/token``.  Client
credentials: the consumer key and secret.  The answer's ``instance_url`` is where
the API calls go.

Why not simple-salesforce's own logins: they build the token URL from a
``domain`` (``https://{domain}.salesforce.com``), which cannot name a My Domain
with a port or a test org, and they keep the token inside one ``Salesforce``
object, so every job would log in again.  Here a token is cached per account
and refreshed single-flight: callers that saw the same stale token wait on one
lock and the first one fetches, the rest reuse its answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs
import jwt
import requests
from sopflow_sdk import ConfigError, RetriableError, Secret

TOKEN_PATH = "/services/oauth2/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: The assertion's lifetime (simple-salesforce and Salesforce's examples use 3 minutes).
ASSERTION_SECONDS = 180


@attrs.frozen
class AccessToken:
    value: Secret = attrs.field(repr=False)
    instance_url: str


def _reveal(value: Any) -> str:
    return value.reveal() if hasattr(value, "reveal") else str(value or "")


def token_request(config: Mapping[str, Any], secrets: Mapping[str, Any], now: float) -> dict[str, str]:
    """The token endpoint's form for the account's flow."""
    if config.get("flow") == "jwt_bearer":
        claims = {
            "iss": config["client_id"],
            "sub": config["username"],
            "aud": config["login_url"].rstrip("/"),
            "exp": int(now) + ASSERTION_SECONDS,
        }
        try:
            assertion = jwt.encode(claims, _reveal(secrets.get("private_key")), algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConfigError(
                [("secrets.private_key", f"not a usable RSA private key in PEM ({type(exc).__name__})")],
                subject="Salesforce connection",
            ) from None
        return {"grant_type": JWT_GRANT, "assertion": assertion}
    return {
        "grant_type": "client_credentials",
        "client_id": config["client_id"],
        "client_secret": _reveal(secrets.get("client_secret")),
    }


def fetch_token(
    config: Mapping[str, Any], secrets: Mapping[str, Any], session: requests.Session
) -> AccessToken:
    """Log in once.  A refusal is a ``ConfigError`` naming Salesforce's reason (never a secret)."""
    url = config["login_url"].rstrip("/") + TOKEN_PATH
    try:
        response = session.post(url, data=token_request(config, secrets, time.time()), timeout=30)
    except requests.RequestException as exc:
        raise RetriableError(
            f"Salesforce login at {url} unreachable: {type(exc).__name__}", retry_after=30
        ) from None
    if response.status_code >= 500:
        raise RetriableError(f"Salesforce login answered {response.status_code}", retry_after=30)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        reason = f"{body.get('error', response.status_code)}: {body.get('error_description', '')}".strip()
        raise ConfigError(
            [
                (
                    "config.client_id",
                    f"Salesforce refused the {config.get('flow')} login ({reason}); check the "
                    "connected app, the user's pre-authorisation and the key or secret",
                )
            ],
            subject="Salesforce connection",
        )
    return AccessToken(Secret(body["access_token"]), body.get("instance_url") or config["login_url"])


class TokenCache:
    """One token per account, refreshed single-flight."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[Any, ...], AccessToken] = {}
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._guard = threading.Lock()
        self.fetches = 0  # how many logins this process made (a test's witness)

    @staticmethod
    def _key(account: Any) -> tuple[Any, ...]:
        # The settings are part of the key: an account whose login changed (a new
        # My Domain, another app) must not keep using the old org's token.
        c = account.config
        return (account.id, c.get("login_url"), c.get("client_id"), c.get("username"), c.get("flow"))

    def _lock(self, key: tuple[Any, ...]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, account: Any, session: requests.Session) -> AccessToken:
        """The cached token, logging in when there is none."""
        token = self._tokens.get(self._key(account))
        if token is not None:
            return token
        return self.refresh(account, session, stale=None)

    def refresh(self, account: Any, session: requests.Session, stale: AccessToken | None) -> AccessToken:
        """A new token unless another caller already replaced ``stale``."""
        key = self._key(account)
        with self._lock(key):
            current = self._tokens.get(key)
            if current is not None and current is not stale:
                return current
            token = fetch_token(account.config, account.secrets, session)
            self.fetches += 1
            self._tokens[key] = token
            return token

    def clear(self) -> None:
        self._tokens.clear()


#: The process's tokens: jobs and routes share them.
TOKENS = TokenCache()
