"""docs/api.md documents exactly the routes the app serves.

Convention (stated at the top of docs/api.md): each route has a level-3
heading holding the method and the OpenAPI path in backticks, e.g.
``### `GET /api/v1/customers/{customer_id}` ``, and a ``**Scope:**`` line in
its section.  The app is built with the first-party ``wecom`` plugin loaded, so
its routes under ``/plugins/wecom/`` are checked too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ROUTE_HEADING = re.compile(r"^### `(GET|POST|PUT|PATCH|DELETE) (/\S*)`\s*$")


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow_sdk.testing.harness import TestDatabase, make_test_app

    db = TestDatabase(tmp_path_factory.mktemp("api-docs"))
    app = make_test_app(db.url_for_test("api_docs"), env={"SOPFLOW_PLUGINS": "wecom"})
    try:
        with TestClient(build_api(app)) as client:
            r = client.get("/schema/openapi.json")
            assert r.status_code == 200, r.text
            yield r.json()
    finally:
        app.dispose()
        db.close()


def served(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, ops in schema["paths"].items()
        for method in ops
        if method.upper() in METHODS
    }


def sections() -> dict[tuple[str, str], str]:
    """Route heading → the text of its section (up to the next heading)."""
    out: dict[tuple[str, str], str] = {}
    current: tuple[str, str] | None = None
    in_code = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            if current:
                out[current] += line + "\n"
            continue
        m = ROUTE_HEADING.match(line)
        if m:
            current = (m.group(1), m.group(2))
            assert current not in out, f"{current[0]} {current[1]} is documented twice"
            out[current] = ""
        elif line.startswith("#"):
            current = None
        elif current:
            out[current] += line + "\n"
    return out


def test_every_served_route_is_documented(openapi: dict[str, Any]) -> None:
    missing = served(openapi) - set(sections())
    assert not missing, (
        "routes missing from docs/api.md (add a heading like ### `GET /api/v1/x/{x_id}`):\n"
        + "\n".join(f"  {m} {p}" for m, p in sorted(missing, key=lambda x: (x[1], x[0])))
    )


def test_every_documented_route_exists(openapi: dict[str, Any]) -> None:
    stale = set(sections()) - served(openapi)
    assert not stale, "docs/api.md documents routes the app does not serve:\n" + "\n".join(
        f"  {m} {p}" for m, p in sorted(stale, key=lambda x: (x[1], x[0]))
    )


def test_every_route_section_states_its_scope() -> None:
    without = [f"{m} {p}" for (m, p), text in sections().items() if "**Scope:**" not in text]
    assert not without, f"route sections without a **Scope:** line: {without}"


def test_documented_scopes_match_the_code() -> None:
    """Each section's scope names what the handler's guard requires (read/admin/ingest)."""
    from sopflow.api.app import CONTROLLERS

    required: dict[tuple[str, str], str] = {}
    for controller in CONTROLLERS:
        for name, member in vars(controller).items():
            handler = getattr(member, "fn", None)
            methods = getattr(member, "http_methods", None)
            if handler is None or not methods or name.startswith("_"):
                continue
            guards = [g.__name__ for g in member.guards or ()]
            m = next((re.fullmatch(r"needs_(\w+)", g) for g in guards if g.startswith("needs_")), None)
            if not m:
                continue
            for sub in member.paths:
                path = (controller.path.rstrip("/") + ("" if sub == "/" else sub)) or "/"
                path = re.sub(r"\{(\w+):\w+\}", r"{\1}", path)
                for method in methods:
                    required[(method, path)] = m.group(1)
    assert len(required) >= 50, f"only {len(required)} handlers found; has the API layout changed?"
    docs = sections()
    wrong = []
    for route, scope in sorted(required.items()):
        text = docs.get(route, "")
        stated = re.search(r"\*\*Scope:\*\*\s*`(\w+)`", text)
        if stated is None or stated.group(1) != scope:
            wrong.append(f"{route[0]} {route[1]}: code requires {scope!r}, docs say {stated and stated[1]!r}")
    assert not wrong, "\n".join(wrong)


def test_json_examples_are_valid_json() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        try:
            json.loads(block)
        except json.JSONDecodeError as exc:
            pytest.fail(f"invalid JSON example in docs/api.md ({exc}):\n{block}")


def test_the_problem_example_is_what_the_api_returns(api: Any) -> None:
    """The error example in the 'Errors' section is a real response."""
    assert api.post("/api/v1/fields", json={"key": "order_count", "type": "number"}).status_code == 201
    r = api.post("/api/v1/customers", json={"display_name": "x", "fields": {"ordr_count": 2}})
    assert r.headers["content-type"].startswith("application/problem+json")
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Errors", 1)[1].split("\n## ", 1)[0]
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    assert r.json() == example
