"""What a plugin may do to customers beyond ingest: define tenant fields at run
time (``host.define_fields``), find customers by a field, and link or unlink a
channel identity inside its ``host.transaction``."""

from __future__ import annotations

from typing import Any

import pytest
from plugin_state_support import NotesPlugin
from sopflow_sdk import ConfigError, FatalError, FieldSpec, Identity, IngestEvent


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    return [("notes", NotesPlugin())]


def _host(app: Any) -> Any:
    from sopflow.host import PluginHost

    return PluginHost(app, "notes")


def test_define_fields_creates_missing_fields_and_refuses_a_type_clash(sopflow_app: Any, api: Any) -> None:
    host = _host(sopflow_app)
    created = host.define_fields(
        api.tenant_id, [FieldSpec("policy_expiry", "date"), FieldSpec("tier", "choice", choices=("A", "B"))]
    )
    assert created == ["policy_expiry", "tier"]
    assert host.define_fields(api.tenant_id, [FieldSpec("policy_expiry", "date")]) == []  # already there
    fields = host.fields(api.tenant_id)
    assert fields["tier"].type == "choice" and fields["tier"].choices == ("A", "B")
    with pytest.raises(ConfigError) as caught:
        host.define_fields(api.tenant_id, [FieldSpec("renewal", "date"), FieldSpec("tier", "text")])
    assert caught.value.problems == [("fields.tier", "already defined as choice, not text")]
    assert "renewal" not in host.fields(api.tenant_id)  # nothing created
    assert {f["key"] for f in api.get("/api/v1/fields").json()} >= {"policy_expiry", "tier"}


def test_find_link_and_unlink_in_one_transaction(sopflow_app: Any, api: Any) -> None:
    host = _host(sopflow_app)
    host.define_fields(api.tenant_id, [FieldSpec("email", "text")])
    ann = api.post("/api/v1/customers", json={"display_name": "Ann", "fields": {"email": "a@x.com"}}).json()[
        "id"
    ]
    api.post("/api/v1/customers", json={"display_name": "Bo", "fields": {"email": "b@x.com"}})
    crm = Identity("crm", "003A")
    with host.transaction(api.tenant_id) as tx:
        assert tx.find_customers("email", "a@x.com") == [ann]
        assert tx.find_customers("email", "nobody@x.com") == []
        tx.link_identity(ann, crm)
        [outcome] = tx.ingest([IngestEvent(type="crm.updated", identity=crm, idempotency_key="k1")])
    assert outcome["customer_id"] == ann  # the event reached the linked customer
    other = api.post("/api/v1/customers", json={"display_name": "Cy"}).json()["id"]
    with (
        pytest.raises(FatalError, match="already belongs to customer"),
        host.transaction(api.tenant_id) as tx,
    ):
        tx.link_identity(other, crm)
    with host.transaction(api.tenant_id) as tx:
        assert tx.unlink_identity(crm) == ann
        assert tx.unlink_identity(crm) is None
    kept = api.get(f"/api/v1/customers/{ann}").json()
    assert kept["display_name"] == "Ann" and all(i["channel"] != "crm" for i in kept["identities"])
