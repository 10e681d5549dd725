"""Plugin state on ``Host``: the per-tenant key-value store is scoped to one
plugin and one tenant, and ``host.transaction`` commits events, state and the
plugin's own tables together (or none of them)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from plugin_state_support import NotesPlugin, Plain, outbox
from sopflow.errors import InvalidInput
from sopflow_sdk import FatalError, Identity, IngestEvent, PluginError, hookimpl


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    return [("notes", NotesPlugin()), ("plain", Plain())]


def _event(key: str, external_id: str = "wm1", **extra: Any) -> IngestEvent:
    return IngestEvent(
        type="message.received",
        identity=Identity("wecom", external_id),
        idempotency_key=key,
        payload={"text": "hi"},
        **extra,
    )


def _events(app: Any, tenant_id: int) -> list[str]:
    from sopflow.models import Event

    with app.tx() as s:
        return list(s.scalars(sa.select(Event.idempotency_key).where(Event.tenant_id == tenant_id)))


def _hosts(app: Any) -> tuple[Any, Any]:
    from sopflow.host import PluginHost

    return PluginHost(app, "notes"), PluginHost(app, "plain")


def test_state_is_scoped_to_the_plugin_and_the_tenant(sopflow_app: Any, api: Any) -> None:
    from sopflow_sdk.testing.harness import new_tenant

    other_tenant, _ = new_tenant(sopflow_app, "globex")
    notes, plain = _hosts(sopflow_app)
    notes.state(api.tenant_id).set("cursor", {"seq": 7})
    notes.state(api.tenant_id).set("cursor.b", [1, "二"])
    plain.state(api.tenant_id).set("cursor", "plain's")
    notes.state(other_tenant).set("cursor", 99)

    assert notes.state(api.tenant_id).get("cursor") == {"seq": 7}
    assert notes.state(api.tenant_id).items("cursor") == {"cursor": {"seq": 7}, "cursor.b": [1, "二"]}
    assert plain.state(api.tenant_id).items() == {"cursor": "plain's"}
    assert notes.state(other_tenant).items() == {"cursor": 99}
    assert plain.state(other_tenant).get("cursor", "none") == "none"
    assert notes.state(api.tenant_id).items("cursor_") == {}  # '_' is not a wildcard

    notes.state(api.tenant_id).set("cursor", {"seq": 8})  # replaces
    assert notes.state(api.tenant_id).get("cursor") == {"seq": 8}
    assert notes.state(api.tenant_id).delete("cursor") is True
    assert notes.state(api.tenant_id).delete("cursor") is False
    assert plain.state(api.tenant_id).get("cursor") == "plain's"  # another plugin's key stays


def test_bad_keys_and_values_name_the_plugin_and_the_fix(sopflow_app: Any, api: Any) -> None:
    notes, _ = _hosts(sopflow_app)
    state = notes.state(api.tenant_id)
    for key in ("", "k" * 201, 5):
        with pytest.raises(PluginError, match="plugin 'notes' used state key"):
            state.set(key, 1)  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="not JSON"):
        state.set("when", object())
    with pytest.raises(PluginError, match="not JSON"):
        state.set("nan", float("nan"))
    with pytest.raises(PluginError, match="own tables"):
        state.set("big", "x" * 70_000)
    assert state.items() == {}


def test_a_plugin_disabled_for_the_tenant_has_no_state(sopflow_app: Any, api: Any) -> None:
    notes, _ = _hosts(sopflow_app)
    notes.state(api.tenant_id).set("k", 1)
    assert api.put("/api/v1/plugins/notes", json={"enabled": False}).status_code == 200
    with pytest.raises(FatalError, match="disabled for tenant"):
        notes.state(api.tenant_id).get("k")
    with pytest.raises(FatalError, match="disabled for tenant"), notes.transaction(api.tenant_id):
        pass


def test_events_state_and_own_tables_commit_together(sopflow_app: Any, api: Any) -> None:
    notes, _ = _hosts(sopflow_app)
    seen: list[str] = []
    sopflow_app.plugins.pm.register(_Observer(seen), name="observer")
    with notes.transaction(api.tenant_id) as tx:
        outcomes = tx.ingest([_event("k1"), _event("k2")])
        tx.state.set("cursor", 2)
        tx.connection.execute(outbox.insert().values(tenant_id=api.tenant_id, body="hello"))
        assert seen == []  # announced only after the commit
        assert tx.state.get("cursor", lock=True) == 2  # visible inside the transaction
    assert [o["status"] for o in outcomes] == ["created", "created"]
    assert sorted(_events(sopflow_app, api.tenant_id)) == ["k1", "k2"]
    assert notes.state(api.tenant_id).get("cursor") == 2
    with notes.transaction(api.tenant_id) as tx:
        assert [r.body for r in tx.connection.execute(sa.select(outbox))] == ["hello"]
    assert sorted(seen) == ["k1", "k2"]


class _Observer:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    @hookimpl
    def on_event(self, tenant_id: int, event: dict[str, Any]) -> None:
        self.seen.append(event["idempotency_key"])


def test_a_bad_event_rolls_back_the_cursor_and_the_tables(sopflow_app: Any, api: Any) -> None:
    notes, _ = _hosts(sopflow_app)
    notes.state(api.tenant_id).set("cursor", 1)
    bad = _event("k-bad", fields={"no.such_field": 1})
    with pytest.raises(InvalidInput, match=r"no\.such_field"), notes.transaction(api.tenant_id) as tx:
        tx.state.set("cursor", 3)
        tx.connection.execute(outbox.insert().values(tenant_id=api.tenant_id, body="never"))
        tx.ingest([_event("k-good")])
        tx.ingest([bad])
    assert notes.state(api.tenant_id).get("cursor") == 1  # not past events that were not stored
    assert _events(sopflow_app, api.tenant_id) == []  # the good event went too
    with notes.transaction(api.tenant_id) as tx:
        assert list(tx.connection.execute(sa.select(outbox))) == []


def test_an_error_in_the_plugins_own_code_rolls_back_the_events(sopflow_app: Any, api: Any) -> None:
    notes, _ = _hosts(sopflow_app)
    with pytest.raises(RuntimeError), notes.transaction(api.tenant_id) as tx:
        tx.ingest([_event("k1")])
        tx.state.set("cursor", 1)
        raise RuntimeError("the plugin failed after ingesting")
    assert _events(sopflow_app, api.tenant_id) == []  # not behind events that were stored
    assert notes.state(api.tenant_id).get("cursor") is None


def test_host_calls_inside_a_transaction_are_refused_with_the_fix(sopflow_app: Any, api: Any) -> None:
    notes, _ = _hosts(sopflow_app)
    with notes.transaction(api.tenant_id):
        for call in (
            lambda: notes.ingest(api.tenant_id, [_event("k1")]),
            lambda: notes.state(api.tenant_id),
            lambda: notes.transaction(api.tenant_id).__enter__(),
            lambda: notes.channel_accounts("wecom"),
        ):
            with pytest.raises(PluginError, match=r"inside host\.transaction"):
                call()
    assert notes.ingest(api.tenant_id, [_event("k1")])[0]["status"] == "created"  # fine afterwards
