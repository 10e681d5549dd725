"""Shared fixtures: a started fake org, an account view of it, the plugin in a real app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sopflow_salesforce.fake import DemoOrg, start_demo_org
from sopflow_salesforce.tokens import TokenCache


@pytest.fixture
def org(monkeypatch: pytest.MonkeyPatch, manual_clock: Any) -> Iterator[DemoOrg]:
    # The org stamps SystemModstamp with the app's manual clock: one timeline for both.
    demo = start_demo_org(now=manual_clock.now)
    # requests trusts the fake's throwaway CA (REQUESTS_CA_BUNDLE replaces the store in tests).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", demo.fake.ca_bundle)
    yield demo
    demo.stop()


@pytest.fixture(autouse=True)
def _no_tokens_between_tests() -> Iterator[None]:
    """The process-wide token cache starts empty (each test has its own fake org)."""
    from sopflow_salesforce.tokens import TOKENS

    TOKENS.clear()
    yield
    TOKENS.clear()


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff and slow-down waits are recorded, not slept (no wall-clock sleeps in tests)."""
    from sopflow_salesforce import limits

    recorded: list[float] = []
    monkeypatch.setattr(limits, "sleep", recorded.append)
    return recorded


@pytest.fixture
def tokens() -> TokenCache:
    return TokenCache()


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    """Load this plugin into ``sopflow_app`` (the SDK fixture), under its entry-point name."""
    from sopflow_salesforce import plugin

    return [("salesforce", plugin)]
