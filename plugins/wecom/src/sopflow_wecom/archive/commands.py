"""``sopflow wecom archive-pull``: one archive pull from the command line (cron, a
first catch-up of a large archive, the tests' kill -9 of a pulling process)."""

from __future__ import annotations

from typing import Any

import click
from sopflow_sdk import SopflowError

from sopflow_wecom.archive.job import MAX_BATCHES, pull_account
from sopflow_wecom.events import CHANNEL


def register(group: click.Group, open_host: Any) -> None:
    @group.command("archive-pull")
    @click.argument("account_id", type=int)
    @click.option("--batches", type=click.IntRange(1, 1000), default=MAX_BATCHES, show_default=True)
    @click.option("--limit", type=click.IntRange(1, 1000), default=1000, show_default=True)
    @click.option("--embedded", is_flag=True, help="Use the embedded SQLite file when no URL is set.")
    def archive_pull(account_id: int, batches: int, limit: int, embedded: bool) -> None:
        """Pull a WeCom account's conversation archive: up to BATCHES calls of LIMIT messages."""
        with open_host(embedded=embedded) as host:
            account = host.channel_account(account_id)
            if account is None or account.channel != CHANNEL:
                raise click.ClickException(f"no WeCom channel account {account_id}")
            try:
                result = pull_account(host, account, max_batches=batches, limit=limit)
            except SopflowError as exc:
                raise click.ClickException(exc.user_message) from None
        click.echo(
            f"seq {result.seq}: fetched {result.fetched}, created {result.created}, "
            f"duplicates {result.duplicates}, skipped {result.skipped}"
        )
