"""Plugins' long-lived worker services (``register_worker_services``), one thread each.

``start_services(app)`` is called by every worker process (``sopflow worker``,
``sopflow up``) after its Dramatiq worker starts; ``WorkerServices.stop()`` at
its shutdown sets the services' shared stop event and waits for their threads.
A service that raises is logged once per interval (``worker_service_failed``)
and called again after its ``restart_seconds``, so one plugin's fault neither
stops the worker nor the other services.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sopflow.host import PluginHost

if TYPE_CHECKING:  # the app hands itself in
    from sopflow.app import SopflowApp


class WorkerServices:
    """The running services of one worker process."""

    def __init__(self, app: SopflowApp) -> None:
        self.app = app
        self.stopping = threading.Event()
        self.threads: dict[str, threading.Thread] = {}

    def __repr__(self) -> str:
        return f"<WorkerServices {sorted(self.threads)}>"

    def start(self) -> WorkerServices:
        for reg in self.app.plugins.registry.all("register_worker_services"):
            thread = threading.Thread(
                target=self._run, args=(reg,), name=f"sopflow-service-{reg.spec.name}", daemon=True
            )
            self.threads[reg.spec.name] = thread
            thread.start()
        return self

    def _run(self, reg: Any) -> None:
        host = PluginHost(self.app, reg.plugin)
        while not self.stopping.is_set():
            try:
                reg.spec.run(host, self.stopping)
            except Exception as exc:
                self.app.failures.report(
                    "worker_service_failed", exc, service=reg.spec.name, plugin=reg.plugin
                )
            self.stopping.wait(reg.spec.restart_seconds)

    def stop(self, timeout: float = 30.0) -> None:
        """Set the stop event and wait (bounded, shared by all) for every service to end."""
        self.stopping.set()
        for thread in self.threads.values():
            thread.join(timeout)

    @property
    def alive(self) -> list[str]:
        return sorted(name for name, thread in self.threads.items() if thread.is_alive())


def start_services(app: SopflowApp) -> WorkerServices:
    return WorkerServices(app).start()
