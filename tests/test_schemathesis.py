"""Property-based API fuzzing from our own OpenAPI schema: no input makes a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings


@pytest.fixture
def api_schema(sopflow_app, api):
    from sopflow.api.app import build_api

    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", build_api(sopflow_app))
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, api):
    from schemathesis.checks import not_a_server_error

    response = case.call(headers={"authorization": f"Bearer {api.key}"})
    STATUSES.add(response.status_code)
    case.validate_response(response, checks=[not_a_server_error])


STATUSES: set[int] = set()


def test_fuzzing_reached_the_handlers():
    """Runs after the fuzz test (file order): authenticated calls got past auth."""
    assert STATUSES & {200, 201, 204}, STATUSES
