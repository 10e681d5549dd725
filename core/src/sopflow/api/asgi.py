"""ASGI factory for multi-process serving (``sopflow serve --workers N``)."""

from litestar import Litestar


def api() -> Litestar:
    from sopflow.api.app import build_api
    from sopflow.app import create_app

    return build_api(create_app(migrate=False))
