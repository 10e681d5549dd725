"""The SDK's local host (``sopflow_sdk.testing.plugin_state.LocalState``) offers a
plugin's unit tests the customer methods core's ``host.transaction`` has:
``find_customers``, ``link_identity``, ``unlink_identity``; a failing block undoes
its links like core's rollback, and an event reaches the linked customer."""

from __future__ import annotations

import pytest
from sopflow_sdk import FatalError, Identity, IngestEvent
from sopflow_sdk.testing.plugin_state import LocalState

CRM = Identity("crm", "003A")


def test_find_link_and_unlink_like_core() -> None:
    local = LocalState()
    ann = local.add_customer(1, {"email": "a@x.com"})
    bo = local.add_customer(1, {"email": "b@x.com", "score": 3})
    other_tenant = local.add_customer(2, {"email": "a@x.com"})
    with local.transaction(1) as tx:
        assert tx.find_customers("email", "a@x.com") == [ann]  # not the other tenant's
        assert tx.find_customers("email", "nobody@x.com") == []
        assert tx.find_customers("score", "3") == []  # only text matches, as in core
        tx.link_identity(ann, CRM)
        tx.link_identity(ann, CRM)  # already hers: nothing to do
        [outcome] = tx.ingest([IngestEvent(type="crm.updated", identity=CRM, idempotency_key="k1")])
    assert outcome["customer_id"] == ann
    assert local.identity_owner(1, CRM) == ann and local.identity_owner(2, CRM) is None
    with pytest.raises(FatalError, match="already belongs to customer"), local.transaction(1) as tx:
        tx.link_identity(bo, CRM)
    with pytest.raises(FatalError, match="does not exist in tenant 1"), local.transaction(1) as tx:
        tx.link_identity(other_tenant, Identity("crm", "003B"))
    with local.transaction(1) as tx:
        assert tx.unlink_identity(CRM) == ann
        assert tx.unlink_identity(CRM) is None
    assert local.identity_owner(1, CRM) is None
    assert local.customers[1][ann] == {"email": "a@x.com"}  # the customer is kept


def test_a_failing_block_undoes_its_links_and_unlinks() -> None:
    local = LocalState()
    ann = local.add_customer(1, {"email": "a@x.com"}, identities=[CRM])
    bo = local.add_customer(1, {"email": "b@x.com"})
    with pytest.raises(RuntimeError), local.transaction(1) as tx:
        tx.unlink_identity(CRM)
        tx.link_identity(bo, Identity("crm", "003B"))
        tx.state.set("cursor", 5)
        raise RuntimeError("the plugin's own code failed")
    assert local.identity_owner(1, CRM) == ann
    assert local.identity_owner(1, Identity("crm", "003B")) is None
    assert local.state(1).get("cursor") is None
    with local.transaction(1) as tx:  # and the next block sees the restored links
        assert tx.unlink_identity(CRM) == ann


def test_add_stores_only_an_absent_key_like_core() -> None:
    local = LocalState()
    state = local.state(1)
    assert state.add("log", {"n": 1}) is True
    assert state.add("log", {"n": 2}) is False  # the first value stays
    assert state.get("log") == {"n": 1}
    assert local.state(2).add("log", []) is True  # another tenant's key
