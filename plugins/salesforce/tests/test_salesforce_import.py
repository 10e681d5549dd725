"""The initial import through a Bulk API 2.0 query job: pages, a checkpointed
locator that survives a crash, and the command with its progress bar."""

from __future__ import annotations

from typing import Any

import pytest
from salesforce_support import connect, host
from sopflow_salesforce import importer, sync
from sopflow_salesforce.fake import DemoOrg

#: Records of the crash test: four pages of 60.  Each costs core's ingest and rule
#: evaluation (inline without a broker), which is what bounds it on a loaded CI machine;
#: four pages are what the resume needs (two stored, a crash on the third, one after).
PAGE = 60
N = 4 * PAGE


def seed(org: DemoOrg, n: int) -> None:
    for i in range(n):
        org.fake.org.create(
            "Contact",
            {"LastName": f"L{i:05d}", "Tier__c": ("Bronze", "Silver", "Gold")[i % 3], "Premium__c": i},
        )


def count_customers(app: Any) -> int:
    import sqlalchemy as sa
    from sopflow.models import Customer

    with app.tx() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(Customer))


def result_requests(org: DemoOrg) -> list[str]:
    return [r.query.get("locator", "") for r in org.fake.requests if r.resource.endswith("/results")]


def test_a_crash_mid_import_resumes_at_the_checkpointed_locator(
    api: Any, org: DemoOrg, sopflow_app: Any
) -> None:
    account_id = connect(api, org)
    seed(org, N)
    calls = {"n": 0}
    real = importer.apply_page

    def crash_on_the_third_page(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:  # the third page (a page is one chunk: PAGE <= importer.CHUNK)
            raise RuntimeError("worker died")
        return real(*args, **kwargs)

    importer.apply_page = crash_on_the_third_page  # type: ignore[assignment]
    try:
        with pytest.raises(RuntimeError):
            importer.run_import(host(sopflow_app), account_id, page_size=PAGE)
    finally:
        importer.apply_page = real  # type: ignore[assignment]
    assert count_customers(sopflow_app) == 2 * PAGE
    seen: list[dict] = []
    final = importer.run_import(host(sopflow_app), account_id, page_size=PAGE, progress=seen.append)
    assert final["done"] and final["records"] == N and seen[-1]["total"] == N
    assert count_customers(sopflow_app) == N
    locators = result_requests(org)
    assert locators.count("") == 1 and len(locators) == 5  # the third page was read twice, no other
    assert len([r for r in org.fake.requests if r.resource == "jobs/query" and r.method == "POST"]) == 1
    account = host(sopflow_app).channel_account(account_id)
    assert sync.sync_account(host(sopflow_app), account)["changed"] == 0  # the sync takes over


def test_the_import_command_shows_progress(api: Any, org: DemoOrg, sopflow_app: Any) -> None:
    """The command as ``sopflow salesforce import`` registers it, run in-process
    (click's runner) on the test app's host: a subprocess would spend its time importing."""
    from contextlib import contextmanager

    import click
    from click.testing import CliRunner
    from sopflow_salesforce import plugin

    @contextmanager
    def open_host(embedded: bool = False) -> Any:
        yield host(sopflow_app)

    cli = click.Group()
    plugin.register_commands(cli, open_host)
    account_id = connect(api, org)
    seed(org, 40)
    done = CliRunner().invoke(cli, ["salesforce", "import", str(account_id)])
    assert done.exit_code == 0, done.output
    assert "importing" in done.output and "imported 40 records" in done.output
    assert count_customers(sopflow_app) == 40
    wrong = CliRunner().invoke(cli, ["salesforce", "import", "999"])
    assert wrong.exit_code != 0 and "no Salesforce connection 999" in wrong.output
    assert wrong.exception is None or isinstance(wrong.exception, SystemExit)


def test_an_import_needs_a_connection_with_a_mapping(api: Any, org: DemoOrg, sopflow_app: Any) -> None:
    from sopflow_sdk import ConfigError

    with pytest.raises(ConfigError, match="no Salesforce connection 999"):
        importer.run_import(host(sopflow_app), 999)
    account_id = connect(api, org, mapping=None)
    with pytest.raises(ConfigError, match="store a mapping first"):
        importer.run_import(host(sopflow_app), account_id)
