"""pytest fixtures for sopflow and its plugins (loaded through ``pytest11``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def sopflow_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sopflow_sdk.testing.harness import TestDatabase

    db = TestDatabase(tmp_path_factory.mktemp("sopflow-db"))
    yield db
    db.close()


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    """Override to register extra plugins ``(name, module_or_object)`` in the app."""
    return []


@pytest.fixture
def sopflow_env() -> dict[str, str]:
    """Override to add settings (``SOPFLOW_*`` values) to the test app, e.g.
    ``{"SOPFLOW_PLUGINS": "sms"}`` to load your *installed* plugin through its
    entry point rather than registering its module with ``sopflow_plugins``."""
    return {}


@pytest.fixture
def manual_clock() -> Any:
    from sopflow.clock import ManualClock

    return ManualClock()


@pytest.fixture
def sopflow_app(
    sopflow_database: Any,
    request: pytest.FixtureRequest,
    manual_clock: Any,
    sopflow_plugins: list[tuple[str, Any]],
    sopflow_env: dict[str, str],
) -> Iterator[Any]:
    from sopflow_sdk.testing.harness import make_test_app

    app = make_test_app(
        sopflow_database.url_for_test(request.node.name),
        clock=manual_clock,
        extra_plugins=sopflow_plugins,
        env=sopflow_env,
    )
    yield app
    app.dispose()


@pytest.fixture
def test_client(sopflow_app: Any) -> Iterator[Any]:
    from litestar.testing import TestClient
    from sopflow.api.app import build_api

    with TestClient(build_api(sopflow_app), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def api(sopflow_app: Any, test_client: Any) -> Any:
    """An authenticated client with an admin key for a fresh tenant ``acme``."""
    from sopflow_sdk.testing.harness import ApiClient, new_tenant

    tenant_id, key = new_tenant(sopflow_app, "acme")
    return ApiClient(test_client, key, tenant_id)


@pytest.fixture
def anon_api(test_client: Any) -> Any:
    from sopflow_sdk.testing.harness import ApiClient

    return ApiClient(test_client, None)


@pytest.fixture
def stub_broker(sopflow_app: Any) -> Iterator[Any]:
    """A Dramatiq in-memory broker bound to the app, with a running worker.
    Call ``stub_broker.join("sopflow")`` to wait for queued work."""
    from sopflow.worker.actors import install
    from sopflow.worker.broker import make_broker, start_worker

    broker = make_broker(sopflow_app.settings)
    install(sopflow_app, broker)
    worker = start_worker(broker, 2)
    yield broker
    worker.stop()
    broker.close()
    from sopflow.worker.actors import uninstall

    uninstall(sopflow_app)
