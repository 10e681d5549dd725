"""The console's routes, mounted by ``api.app`` at ``/console`` (left out of the
OpenAPI document: they are pages, not the API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Router
from litestar.static_files import create_static_files_router

from sopflow.console import board, channels, customer, plugin_pages, sign_in, sops
from sopflow.console.sessions import gate

STATIC = Path(__file__).parent / "static"


def console_routers() -> list[Any]:
    pages = Router(
        path="/console",
        route_handlers=[
            sign_in.sign_in_page,
            sign_in.sign_in_post,
            sign_in.sign_out_post,
            board.home,
            board.board_page,
            board.move_card,
            customer.customer_page,
            customer.customer_save,
            sops.sops_page,
            sops.sop_data_page,
            sops.end_enrollment_post,
            sops.sop_editor_page,
            sops.sop_editor_post,
            sops.sop_switch,
            channels.channels_page,
            plugin_pages.plugin_page,
        ],
        before_request=gate,
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/console/static", directories=[STATIC], include_in_schema=False, name="console_static"
    )
    return [pages, static]
