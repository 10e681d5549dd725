"""Every success body is typed: the OpenAPI states each JSON answer's schema
(schemathesis's response-schema check then holds every response to it), and
the request's session is a dependency that commits after the handler, rolls
back on an error, and announces events only once they are committed."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.testing import TestClient
from sopflow.api.deps import DEPENDENCIES, announce_after_commit
from sopflow.api.problems import EXCEPTION_HANDLERS
from sopflow.db import Session
from sopflow.errors import Conflict
from sopflow.models import Staff

#: operations whose success body is not JSON, or not core's to state
NOT_JSON = {"GET /metrics"}


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def _typed(doc: dict[str, Any], schema: dict[str, Any]) -> bool:
    """An object with its properties, or an array of such objects."""
    schema = _resolve(doc, schema)
    if schema.get("type") == "array":
        return _typed(doc, schema["items"])
    return schema.get("type") == "object" and bool(schema.get("properties"))


def test_every_success_body_has_its_schema_in_the_openapi(sopflow_app):
    from sopflow.api.app import build_api

    doc = build_api(sopflow_app).openapi_schema.to_schema()
    untyped = []
    for path, item in doc["paths"].items():
        if path.startswith(("/plugins/", "/schema", "/console")):
            continue
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            for status, response in operation["responses"].items():
                if not status.startswith("2") or status == "204" or label in NOT_JSON:
                    continue
                schema = (response.get("content") or {}).get("application/json", {}).get("schema")
                if schema is None or not _typed(doc, schema):
                    untyped.append(f"{label} {status}")
    assert untyped == []


def test_a_body_states_its_keys_and_which_may_be_null(sopflow_app):
    from sopflow.api.app import build_api

    schemas = build_api(sopflow_app).openapi_schema.to_schema()["components"]["schemas"]
    customer = schemas["CustomerOut"]
    assert "relations" in customer["required"] and "churned_at" in customer["required"]
    assert {"type": "null"} in customer["properties"]["churned_at"]["anyOf"]
    # a key only sometimes there is not required (an ingest outcome's customer on a duplicate)
    outcome = schemas["IngestOutcome"]
    assert "customer_id" in outcome["properties"] and "customer_id" not in outcome["required"]
    # the key is shown once, on creation; never in a listing
    assert "api_key" in schemas["NewApiKeyOut"]["properties"]
    assert "api_key" not in schemas["ApiKeyOut"]["properties"]
    assert "secret_keys" in schemas["ChannelAccountOut"]["properties"]
    assert "secrets" not in schemas["ChannelAccountOut"]["properties"]


def test_a_get_reads_in_a_read_only_session_and_a_write_commits_after_the_handler(sopflow_app, api):
    from sopflow.models import Customer

    made = api.post("/api/v1/customers", json={"display_name": "Wang"})
    assert made.status_code == 201
    with sopflow_app.read() as s:
        assert s.get(Customer, made.json()["id"]).display_name == "Wang"
    assert api.get(f"/api/v1/customers/{made.json()['id']}").json() == made.json()


def test_an_error_after_a_write_rolls_it_back_and_announces_nothing(sopflow_app, api, monkeypatch):
    """A handler that wrote, queued an announcement, then failed: nothing stays, nothing is said."""

    announced: list[Any] = []
    monkeypatch.setattr(sopflow_app, "announce", lambda tenant_id, events: announced.append(events))

    @post("/write-then-fail", sync_to_thread=True)
    def write_then_fail(session: NamedDependency[Session]) -> None:
        session.add(Staff(tenant_id=api.tenant_id, external_id="ghost", created_at=sopflow_app.now()))
        session.flush()
        announce_after_commit(session, api.tenant_id, [{"type": "staff.added"}])
        raise Conflict("refused after the write")

    @post("/write", sync_to_thread=True)
    def write(session: NamedDependency[Session]) -> None:
        session.add(Staff(tenant_id=api.tenant_id, external_id="kept", created_at=sopflow_app.now()))
        announce_after_commit(session, api.tenant_id, [{"type": "staff.added"}])

    app = Litestar(
        route_handlers=[write_then_fail, write],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        state=State({"sopflow": sopflow_app}),
    )
    with TestClient(app) as client:
        assert client.post("/write-then-fail").status_code == 409
        assert _staff(sopflow_app) == [] and announced == []
        assert client.post("/write").status_code == 201
    assert _staff(sopflow_app) == ["kept"] and announced == [[{"type": "staff.added"}]]


def _staff(app: Any) -> list[str]:
    import sqlalchemy as sa

    with app.read() as s:
        return list(s.scalars(sa.select(Staff.external_id)))


def test_events_are_announced_once_committed(sopflow_app, api, monkeypatch):
    from sopflow.models import Customer

    seen: list[tuple[int, bool]] = []

    def announce(tenant_id: int, events: list[dict[str, Any]]) -> None:
        with sopflow_app.read() as s:  # another session: the change must be committed already
            seen.extend((e["customer_id"], s.get(Customer, e["customer_id"]) is not None) for e in events)

    monkeypatch.setattr(sopflow_app, "announce", announce)
    made = api.post("/api/v1/customers", json={"display_name": "Zhao"})
    assert made.status_code == 201
    assert seen == [(made.json()["id"], True)]
