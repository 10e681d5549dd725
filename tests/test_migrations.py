"""The Alembic migrations and the SQLModel metadata describe the same schema.

On the back-end the suite runs on (SQLite, or Postgres with
``SOPFLOW_TEST_BACKEND=postgres``): a fresh database upgraded to head has
nothing for ``alembic autogenerate`` to add, drop or alter; and the chain can be
walked down to base and up again.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

BACKEND = os.environ.get("SOPFLOW_TEST_BACKEND", "sqlite")


def _engine(url: str) -> sa.Engine:
    from sopflow.db import make_engine

    return make_engine(url)


def _diff(engine: sa.Engine) -> list[Any]:
    from sopflow.models import metadata

    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "render_as_batch": conn.dialect.name == "sqlite",
            },
        )
        return compare_metadata(ctx, metadata)


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def _head() -> str:
    from sopflow.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def _current(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_upgrade_head_matches_the_models(empty_url: str) -> None:
    from sopflow.migrate import upgrade
    from sopflow.models import metadata

    engine = _engine(empty_url)
    try:
        upgrade(engine)
        assert _current(engine) == _head()
        assert _tables(engine) == {t.name for t in metadata.sorted_tables}
        diff = _diff(engine)
        assert diff == [], "the migrations and sopflow.models disagree; write a migration for:\n" + "\n".join(
            repr(d) for d in diff
        )
    finally:
        engine.dispose()


def test_downgrade_to_base_then_upgrade_again(empty_url: str) -> None:
    from sopflow.migrate import downgrade, upgrade

    engine = _engine(empty_url)
    try:
        upgrade(engine)
        before = _tables(engine)
        downgrade(engine, "base")
        assert _current(engine) is None
        assert _tables(engine) == set(), "downgrade to base left tables behind"
        upgrade(engine)
        assert _current(engine) == _head()
        assert _tables(engine) == before
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_every_revision_steps_down_and_up(empty_url: str) -> None:
    """Each migration's downgrade undoes exactly its upgrade, one step at a time."""
    from sopflow.migrate import alembic_config, downgrade, upgrade

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    engine = _engine(empty_url)
    try:
        seen: dict[str, set[str]] = {}
        for rev in revisions:
            upgrade(engine, rev)
            seen[rev] = _tables(engine)
        for rev, below in zip(reversed(revisions), [*reversed(revisions[:-1]), None], strict=True):
            downgrade(engine, below or "base")
            assert _tables(engine) == (seen[below] if below else set()), f"downgrade of {rev}"
            upgrade(engine, rev)
            assert _tables(engine) == seen[rev], f"re-upgrade to {rev}"
            downgrade(engine, below or "base")
    finally:
        engine.dispose()
