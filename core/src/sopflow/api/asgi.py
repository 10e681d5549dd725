"""ASGI factory for multi-process serving (``sopflow serve --workers N``)."""

from litestar import Litestar


def api() -> Litestar:
    from sopflow.api.app import build_api
    from sopflow.app import create_app
    from sopflow.worker.actors import enqueue_only

    return build_api(enqueue_only(create_app(migrate=False)))
