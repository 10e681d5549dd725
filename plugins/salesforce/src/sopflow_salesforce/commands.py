"""``sopflow salesforce …``: the plugin's command-line tools (hook ``register_commands``)."""

from __future__ import annotations

from typing import Any

import click
from sopflow_sdk import SopflowError

from sopflow_salesforce import importer


def register(cli: click.Group, open_host: Any) -> None:
    @cli.group()
    def salesforce() -> None:
        """Salesforce tools."""

    @salesforce.command("import")
    @click.argument("account_id", type=int)
    @click.option("--restart", is_flag=True, help="Start a new Bulk query job instead of resuming.")
    @click.option("--embedded", is_flag=True, help="Use the embedded SQLite file when no URL is set.")
    def import_cmd(account_id: int, restart: bool, embedded: bool) -> None:
        """Import every record of the mapped object through a Bulk API 2.0 query.

        Records become customers (customer.imported: no welcome message, no
        new-customer SOP). Resumable: after a crash, run it again and it goes on
        from the last page stored."""
        with open_host(embedded=embedded) as host, click.progressbar(length=1, label="importing") as bar:
            seen = {"records": 0}

            def show(progress: dict[str, Any]) -> None:
                total = int(progress.get("total") or 0)
                if total and bar.length != total:
                    bar.length = total
                done = int(progress.get("records") or 0)
                bar.update(done - seen["records"])
                seen["records"] = done

            try:
                final = importer.run_import(host, account_id, progress=show, restart=restart)
            except SopflowError as exc:
                raise click.ClickException(exc.user_message) from None
        click.echo(f"imported {final['records']} records (Bulk job {final['job_id']})")
