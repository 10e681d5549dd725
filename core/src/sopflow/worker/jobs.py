"""Plugin jobs as Dramatiq messages.

One actor per broker, ``plugin_job``, runs any registered ``JobSpec`` by name
against the app that installed it (a closure, so two apps in one test process
never cross).  Without a broker (the CLI) jobs run inline, so nothing enqueued
is lost.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from sopflow_sdk import PluginError


def enqueue_only(app: Any) -> Any:
    """For an API process: with Redis (``SOPFLOW_REDIS_URL``) it only enqueues —
    the evaluate step after each event and plugin jobs go to the workers (and
    the worker that enrols a customer wakes the dispatch) instead of running
    inside the request.  Without Redis nothing changes: they run inline."""
    if app.settings.redis_url:
        from sopflow.worker.broker import make_broker

        install(app, make_broker(app.settings))
    return app


def install(app: Any, broker: dramatiq.Broker) -> None:
    """Bind the actors to ``broker`` and to ``app``."""
    app.broker = broker

    def plugin_job(name: str, kwargs: dict[str, Any]) -> None:
        run_job(app, name, kwargs)

    dramatiq.actor(plugin_job, actor_name="plugin_job", broker=broker, max_retries=5, queue_name="sopflow")
    from sopflow.engine.runner import install_actors

    install_actors(app, broker)


def run_job(app: Any, name: str, kwargs: dict[str, Any]) -> None:
    from sopflow.host import PluginHost

    reg = app.plugins.registry.get("register_jobs", name)
    if reg is None:
        raise PluginError(f"no job named {name!r} is registered; is its plugin enabled?")
    reg.spec.fn(PluginHost(app, reg.plugin), **kwargs)


def enqueue_job(app: Any, name: str, kwargs: dict[str, Any]) -> None:
    if app.plugins.registry.get("register_jobs", name) is None:
        raise PluginError(f"no job named {name!r} is registered; register it with register_jobs")
    if app.broker is None:
        run_job(app, name, kwargs)
        return
    app.broker.actors["plugin_job"].send(name, kwargs)
