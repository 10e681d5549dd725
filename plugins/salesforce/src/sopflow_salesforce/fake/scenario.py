"""A ready-made org for tests and demos: ``org = start_demo_org()``.

It starts a ``FakeSalesforce`` whose connected app trusts a freshly generated
RSA key pair (for the JWT bearer flow) and a consumer secret (for client
credentials), with a ``Contact`` and a ``Lead`` object carrying the fields a
renewal scene needs: a CRM-owned ``Policy_Expiry__c`` date, a ``Tier__c``
picklist and ``Sopflow_Id__c``, the external-id field sopflow upserts by.
``org.account_settings()`` is the body for ``POST /api/v1/channel-accounts``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sopflow_salesforce.fake.oauth import ConnectedApp
from sopflow_salesforce.fake.org import field
from sopflow_salesforce.fake.server import FakeSalesforce

CLIENT_ID = "3MVG9fake.consumer.key"
USERNAME = "integration@example.com"
CLIENT_SECRET = "fake-consumer-secret-0123456789"

CONTACT_FIELDS = [
    field("FirstName", "string"),
    field("LastName", "string"),
    field("Email", "email"),
    field("Phone", "phone"),
    field("Description", "textarea"),
    field("Policy_Expiry__c", "date", "Policy expiry date"),
    field("Tier__c", "picklist", "Tier", values=["Bronze", "Silver", "Gold"]),
    field("Interests__c", "multipicklist", "Interests", values=["Car", "Home", "Travel"]),
    field("Premium__c", "currency", "Annual premium"),
    field("Do_Not_Call__c", "boolean", "Do not call"),
    field("Last_Touch__c", "datetime", "Last touch from sopflow"),
    field("Engagement__c", "picklist", "Engagement", values=["cold", "warm", "hot"]),
    field("Sopflow_Id__c", "string", "sopflow customer id", external_id=True),
]
LEAD_FIELDS = [
    field("LastName", "string"),
    field("Company", "string"),
    field("Email", "email"),
    field("Phone", "phone"),
    field("Status", "picklist", "Lead status", values=["Open", "Working", "Qualified", "Unqualified"]),
    field("Sopflow_Id__c", "string", "sopflow customer id", external_id=True),
]


def key_and_certificate() -> tuple[bytes, bytes]:
    """A throwaway RSA key (PEM, PKCS#8) and its self-signed certificate (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sopflow connected app")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, cert.public_bytes(serialization.Encoding.PEM)


@attrs.define
class DemoOrg:
    fake: FakeSalesforce
    private_key_pem: str

    def account_settings(self, flow: str = "jwt_bearer", **config: Any) -> dict[str, Any]:
        """``{"channel", "name", "config", "secrets"}`` for ``POST /api/v1/channel-accounts``."""
        base = {"login_url": self.fake.login_url, "flow": flow, "client_id": CLIENT_ID}
        if flow == "jwt_bearer":
            base["username"] = USERNAME
            secrets = {"private_key": self.private_key_pem}
        else:
            secrets = {"client_secret": CLIENT_SECRET}
        base.update(config)
        return {"channel": "salesforce", "name": "crm", "config": base, "secrets": secrets}

    def stop(self) -> None:
        self.fake.stop()


@functools.cache
def _app_key() -> tuple[bytes, bytes]:
    # One key pair per process: RSA generation is the slow part of starting an org.
    return key_and_certificate()


def start_demo_org(now: Callable[[], dt.datetime] | None = None) -> DemoOrg:
    """A started fake org with Contact and Lead; call ``.stop()`` when done."""
    pem, cert = _app_key()
    fake = FakeSalesforce(ConnectedApp(CLIENT_ID, USERNAME, cert, CLIENT_SECRET, audience=""), now=now)
    fake.org.add_object("Contact", CONTACT_FIELDS)
    fake.org.add_object("Lead", LEAD_FIELDS)
    fake.start()
    return DemoOrg(fake, pem.decode("ascii"))
