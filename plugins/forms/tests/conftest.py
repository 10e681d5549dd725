"""Shared fixtures: the orders and forms plugins in a real sopflow app over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from forms_support import LiveSopflow


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    """Load the distribution's plugins into ``sopflow_app`` under their entry-point names."""
    from sopflow_forms import forms_plugin, links_plugin, orders_plugin

    return [("orders", orders_plugin), ("forms", forms_plugin), ("links", links_plugin)]


@pytest.fixture
def live(api: Any, test_client: Any, manual_clock: Any) -> Iterator[LiveSopflow]:
    """sopflow's API for a fresh tenant, also served over real HTTP on 127.0.0.1."""
    from sopflow_sdk.testing import LiveServer

    with LiveServer(test_client.app) as server:
        yield LiveSopflow(api, server.base_url, manual_clock)
