"""Fixtures for the rule-language tests: one database per back-end per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from conditions_db import postgres_engine, seed_pipelines, sqlite_engine
from conditions_strategies import PIPELINES, STAGE_NAMES


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite_pass),  # the Postgres pass runs only its own
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def db(request: Any, tmp_path_factory: Any) -> Iterator[tuple[sa.Engine, dict[tuple[int, str], int]]]:
    """(engine, stage ids) on SQLite and on Postgres (skipped when SOPFLOW_TEST_POSTGRES_URL is unset)."""
    if request.param == "sqlite":
        engine = sqlite_engine(str(tmp_path_factory.mktemp("conditions") / "rules.db"))
        yield engine, seed_pipelines(engine, PIPELINES, STAGE_NAMES)
        engine.dispose()
        return
    gen = postgres_engine()
    engine = next(gen)
    if engine is None:
        pytest.skip("set SOPFLOW_TEST_POSTGRES_URL to run the Postgres variant")
    try:
        yield engine, seed_pipelines(engine, PIPELINES, STAGE_NAMES)
    finally:
        gen.close()
