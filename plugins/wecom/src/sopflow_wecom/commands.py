"""``sopflow wecom …``: the plugin's command-line tools (hook ``register_commands``)."""

from __future__ import annotations

from typing import Any

import click
from sopflow_sdk import SopflowError

from sopflow_wecom import importer
from sopflow_wecom.archive import commands as archive_commands


def register(cli: click.Group, open_host: Any) -> None:
    @cli.group()
    def wecom() -> None:
        """WeCom (企业微信) tools."""

    archive_commands.register(wecom, open_host)

    @wecom.command("import")
    @click.argument("account_id", type=int)
    @click.option("--embedded", is_flag=True, help="Use the embedded SQLite file when no URL is set.")
    def import_cmd(account_id: int, embedded: bool) -> None:
        """Import every follow user's existing customers of a WeCom channel account.

        Each (customer, staff member) becomes a customer.imported event: no welcome
        message and no new-customer SOP. Re-runnable: a second run adds nothing."""
        label = "importing follow users' customers"
        with open_host(embedded=embedded) as host, click.progressbar(length=1, label=label) as bar:
            seen = {"done": 0}

            def show(progress: dict[str, Any]) -> None:
                total = progress.get("follow_users") or 0
                if total and bar.length != total:
                    bar.length = total
                done = int(progress.get("follow_users_done") or 0)
                bar.update(done - seen["done"])
                seen["done"] = done

            try:
                final = importer.run_import(host, account_id, progress=show)
            except SopflowError as exc:
                raise click.ClickException(exc.user_message) from None
        click.echo(
            f"contacts seen {final.get('contacts_seen', 0)}: created {final.get('customers_created', 0)} "
            f"customers, updated {final.get('customers_updated', 0)}, unchanged {final.get('unchanged', 0)}"
        )
