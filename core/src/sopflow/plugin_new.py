"""``sopflow plugin new``: a plugin distribution from the packaged copier template.

The template (``plugin_template/``, shipped inside this package) renders a
``sopflow-NAME`` distribution of one kind — a channel, a trigger or a CRM —
whose own tests, the SDK's channel conformance suite included, pass as
generated.  Copier renders it: only the chosen kind's files are created (file
names that are Jinja conditions, no post-generation script to run), and the
answers are kept in ``.copier-answers.yml``.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

TEMPLATE = Path(__file__).parent / "plugin_template"
KINDS = ("channel", "trigger", "crm")
NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
MAX_NAME = 30


class PluginNameError(ValueError):
    """The plugin name cannot make a distribution, module and entry point."""


def check_name(name: str) -> str:
    """``name`` as given, or ``PluginNameError`` saying how to fix it."""
    if name.startswith(("sopflow-", "sopflow_")) or name == "sopflow":
        raise PluginNameError(
            f"{name!r}: give the name without the 'sopflow-' prefix "
            f"(sopflow plugin new {name[8:] or 'sms'} makes sopflow-{name[8:] or 'sms'})"
        )
    if not NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise PluginNameError(
            f"{name!r}: use lowercase letters, digits and single hyphens, starting with a letter, "
            f"at most {MAX_NAME} characters (e.g. sms, acme-crm)"
        )
    return name


def distribution_name(name: str) -> str:
    return "sopflow-" + name.replace("_", "-")


def render(name: str, kind: str, target: Path, description: str | None = None) -> Path:
    """Render the template for ``name`` of ``kind`` into ``target`` (which must not exist)."""
    import copier  # here, not at the top: only this command pays for importing it

    data = {"name": check_name(name), "kind": kind}
    if description:
        data["description"] = description
    copier.run_copy(str(TEMPLATE), target, data=data, defaults=True, quiet=True, unsafe=False, vcs_ref=None)
    return target


@click.group("plugin")
def plugin_group() -> None:
    """Tools for plugin authors."""


@plugin_group.command("new")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), required=True, help="What the plugin brings.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the sopflow-NAME directory.",
)
@click.option("--description", default=None, help="One line for the distribution's metadata.")
def new(name: str, kind: str, output_dir: Path, description: str | None) -> None:
    """Create sopflow-NAME, a plugin distribution whose tests pass as generated.

    \b
    channel  a Channel with declared capabilities, against an in-process provider,
             tested with the SDK's channel conformance suite
    trigger  a signed webhook (HMAC-SHA256 of the raw body) turning another
             system's events into sopflow events
    crm      customer fields polled from the CRM with idempotency keys, and
             activity written back from on_event
    """
    try:
        check_name(name)
    except PluginNameError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    target = output_dir / distribution_name(name)
    if target.exists():
        raise click.BadParameter(
            f"{target} already exists; choose another NAME or --output-dir, or remove it first",
            param_hint="--output-dir",
        )
    render(name, kind, target, description)
    click.echo(f"created {target} ({kind} plugin '{name.replace('-', '_')}')")
    click.echo("next:")
    click.echo(f"  cd {target}")
    click.echo('  uv sync            # or: pip install -e . "sopflow-sdk[testing]" pytest ruff')
    click.echo("  uv run pytest      # its own tests, the SDK conformance suite included")
    click.echo("(inside a sopflow checkout, add the directory to [tool.uv.workspace] members instead)")
