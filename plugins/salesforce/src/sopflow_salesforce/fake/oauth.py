"""The fake's token endpoint, ``POST /services/oauth2/token``, for both flows.

JWT bearer: the assertion's RS256 signature is checked against the connected
app's certificate, and its claims as Salesforce documents them: ``iss`` the
consumer key, ``sub`` the user, ``aud`` the login URL, ``exp`` in the future.
Client credentials: the consumer key and secret.  Failures answer 400 with
Salesforce's ``{"error": ..., "error_description": ...}``.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import attrs
import jwt
from cryptography import x509

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@attrs.define
class ConnectedApp:
    """What the org knows about our connected app and its integration user."""

    client_id: str
    username: str
    certificate_pem: bytes  # the certificate uploaded to the app ("Use digital signatures")
    client_secret: str
    audience: str  # the login URL the assertion must name


def _refuse(error: str, description: str) -> tuple[int, dict[str, Any]]:
    return 400, {"error": error, "error_description": description}


def issue_token(
    app: ConnectedApp, body: bytes, now: Callable[[], float], instance_url: str, tokens: dict[str, bool]
) -> tuple[int, Mapping[str, Any]]:
    """The token response, or the documented refusal."""
    form = dict(parse_qsl(body.decode("utf-8")))
    grant = form.get("grant_type")
    if grant == JWT_GRANT:
        public_key = x509.load_pem_x509_certificate(app.certificate_pem).public_key()
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                public_key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=app.audience,
                options={"require": ["iss", "sub", "aud", "exp"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            return _refuse("invalid_grant", "expired authorization code")
        except jwt.InvalidTokenError:
            return _refuse("invalid_grant", "invalid assertion")
        if claims["iss"] != app.client_id:
            return _refuse("invalid_client_id", "client identifier invalid")
        if claims["sub"] != app.username:
            return _refuse("invalid_grant", "user hasn't approved this consumer")
    elif grant == "client_credentials":
        if form.get("client_id") != app.client_id:
            return _refuse("invalid_client_id", "client identifier invalid")
        if not _secrets.compare_digest(form.get("client_secret", ""), app.client_secret):
            return _refuse("invalid_client", "invalid client credentials")
    else:
        return _refuse("unsupported_grant_type", "grant type not supported")
    token = "00D000000000001!" + _secrets.token_urlsafe(24)
    tokens[token] = True
    return 200, {
        "access_token": token,
        "instance_url": instance_url,
        "id": f"{instance_url}/id/00D000000000001AAA/005000000000001AAA",
        "token_type": "Bearer",
        "issued_at": str(int(now() * 1000)),
        "scope": "api",
    }
