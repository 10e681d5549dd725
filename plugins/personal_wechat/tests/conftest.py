"""Shared fixtures: one fake clock drives the fake gateway and the pacing; the
gateway is the fake puppet service over real gRPC on 127.0.0.1."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pw_support import Kit
from sopflow_personal_wechat.adapters.wcferry import WcferryGateway
from sopflow_personal_wechat.adapters.wechaty import WechatyGateway
from sopflow_personal_wechat.fake import (
    FakeClock,
    FakePuppetService,
    start_fake,
    start_fake_wcferry,
)
from sopflow_personal_wechat.fake.scenario import TOKEN
from sopflow_personal_wechat.pacing import Pacer
from sopflow_sdk import Secret


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakePuppetService]:
    with start_fake(clock) as server:
        yield server


@pytest.fixture
def gateway(fake: FakePuppetService) -> Iterator[WechatyGateway]:
    made = WechatyGateway(fake.endpoint, Secret(TOKEN), tls=False, timeout=1.0)
    yield made
    made.close()


@pytest.fixture(params=["wechaty", "wcferry"])
def kit(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Kit]:
    """Each port-level test runs against both adapters, each over its own wire protocol."""
    if request.param == "wechaty":
        with start_fake(clock) as fake:
            gateway = WechatyGateway(fake.endpoint, Secret(TOKEN), tls=False, timeout=1.0)
            yield Kit("wechaty", fake, gateway, fake.state)
            gateway.close()
    else:
        with start_fake_wcferry(clock) as fake:
            yield Kit("wcferry", fake, WcferryGateway(fake.endpoint, timeout=1.0), fake.state)


@pytest.fixture
def pacing_url(sopflow_database: Any, request: pytest.FixtureRequest) -> str:
    """A migrated database (SQLite file or Postgres, by SOPFLOW_TEST_BACKEND) with the plugin's table."""
    return str(sopflow_database.url_for_test(request.node.name))


@pytest.fixture(scope="session")
def shared_pacing_url(sopflow_database: Any) -> str:
    """One pacing database for tests whose accounts never meet (each fake has its own
    port, so its own account key): no per-test copy or truncation."""
    return str(sopflow_database.url_for_test("shared-pacing"))


@pytest.fixture
def pacing_engine(pacing_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(pacing_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pacer(pacing_engine: sa.Engine, clock: FakeClock) -> Pacer:
    return Pacer(pacing_engine, clock, random.Random(7))


@pytest.fixture
def account_config(fake: FakePuppetService) -> dict[str, Any]:
    return {"adapter": "wechaty", "endpoint": fake.endpoint, "tls": False}


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    """Load this plugin into ``sopflow_app`` (the SDK fixture), under its entry-point name."""
    from sopflow_personal_wechat import plugin

    return [("personal_wechat", plugin)]


@pytest.fixture(params=["wechaty", "wcferry"])
def app_fake(request: pytest.FixtureRequest, manual_clock: Any) -> Iterator[Any]:
    """A fake gateway of each kind on sopflow's manual clock."""
    start = start_fake if request.param == "wechaty" else start_fake_wcferry
    with start(lambda: manual_clock.now().timestamp()) as fake:
        fake.adapter = request.param
        yield fake


@pytest.fixture
def account_id(api: Any, app_fake: Any) -> int:
    """A personal WeChat channel account on ``app_fake`` (its token never in the answer)."""
    made = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "personal_wechat",
            "name": "staff01",
            "config": {"adapter": app_fake.adapter, "endpoint": app_fake.endpoint, "tls": False},
            "secrets": {"token": TOKEN} if app_fake.adapter == "wechaty" else {},
        },
    )
    assert made.status_code == 201, made.text
    assert TOKEN not in made.text
    return int(made.json()["id"])
