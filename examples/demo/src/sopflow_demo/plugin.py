"""The hooks of the demo plugin: the module the ``demo`` entry point names.

It adds one thing, the ``sopflow demo`` command; it registers no field,
trigger, action, channel, route or job, so a running sopflow that loads it
(every installed plugin loads unless ``SOPFLOW_PLUGINS`` says otherwise) is
unchanged by it.
"""

from __future__ import annotations

from typing import Any

from sopflow_sdk import hookimpl

from sopflow_demo.command import demo


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(demo)
