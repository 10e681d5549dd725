"""The demo's world: sopflow on embedded defaults (a SQLite file in a temp dir,
no broker, the manual clock), its API served over real HTTP on 127.0.0.1, and
the fake WeCom calling back into it, encrypted and signed like the real one.

This module is the demo's one door into sopflow's runtime: it builds the app
(``create_app``, ``build_api``), owns the manual clock, and runs what a
scheduler and worker would between two simulated happenings (``settle``,
``advance_audiences``, ``poll_confirmations``).  Everything else the demo does
goes through the public HTTP API, the fake WeCom, the 有赞 shop's signed pushes
and the hosted survey page (``shop.py``), except the report's checks, which
read the database through ``sopflow.models``.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sopflow.api.app import build_api
from sopflow.app import create_app
from sopflow.clock import ManualClock
from sopflow.engine.delivery.confirmations import poll_confirmations
from sopflow.engine.delivery.dispatch import run_until_idle
from sopflow.engine.sops.manage import advance_audiences
from sopflow.host import enqueue_job
from sopflow.settings import Settings
from sopflow.worker.scheduler import Scheduler
from sopflow_wecom.archive.job import JOB as ARCHIVE_PULL_JOB
from sopflow_wecom.fake import FakeWeCom
from sopflow_wecom.fake.archive import CompilerMissing

from sopflow_demo.archive import DemoArchive

#: How often (simulated) the demo runs the scheduler's periodic plugin jobs.
JOBS_EVERY = timedelta(hours=12)  # the CRM sync is daily; its write-backs may wait half a day


class DemoError(RuntimeError):
    """The demo could not run (a refused API call, a server that did not start)."""


class ApiSession:
    """An httpx client that raises ``DemoError`` naming the call when sopflow refuses it."""

    def __init__(self, base_url: str, key: str) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {key}"}, timeout=30)

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        response = self.http.request(method, path, **kw)
        if response.status_code not in expect:
            raise DemoError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, json=json, **kw)

    def close(self) -> None:
        self.http.close()


class Server:
    """uvicorn in a thread on an ephemeral 127.0.0.1 port."""

    def __init__(self, asgi: Any) -> None:
        config = uvicorn.Config(asgi, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="sopflow-demo-api", daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15  # bounded: a server that never starts is an error
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise DemoError("the demo API server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class World:
    """Everything the demo runs on; a context manager that stops it all."""

    def __init__(self, workdir: Path, start: datetime) -> None:
        self.workdir = workdir
        self.clock = ManualClock(start)
        self.operator_token = secrets.token_urlsafe(24)
        self.app: Any = None
        self.fake: Any = None
        self.archive: DemoArchive | None = None
        self.server: Server | None = None
        self.base_url = ""
        self.closers: list[Any] = []  # scenes' own servers (the fake Salesforce org), stopped on exit
        self._scheduler: Any = None
        self._jobs_at: datetime | None = None

    def __enter__(self) -> World:
        try:  # first: without a C compiler the demo stops here, saying how to get one
            self.archive = DemoArchive(self.workdir / "wecom-archive").__enter__()
        except CompilerMissing as exc:
            raise DemoError(
                f"the demo's keyword scene reads WeCom's conversation archive, and {exc}"
            ) from None
        settings = Settings.from_env(
            {
                "SOPFLOW_DATABASE_URL": f"sqlite:///{self.workdir / 'demo.db'}",
                "SOPFLOW_SECRET_KEY": secrets.token_urlsafe(32),
                "SOPFLOW_CLOCK": "manual",
                "SOPFLOW_PLUGINS": "wecom,orders,forms,salesforce,personal_wechat",
                "SOPFLOW_LOG_LEVEL": "ERROR",
                "SOPFLOW_TIMEZONE": "Asia/Shanghai",
            }
        )
        # The tenants endpoint reads the operator token from the environment.
        os.environ["SOPFLOW_OPERATOR_TOKEN"] = self.operator_token
        self.app = create_app(settings, clock=self.clock, migrate=True)
        self.fake = FakeWeCom(clock=lambda: self.clock.now().timestamp()).start()
        self.server = Server(build_api(self.app))
        self.base_url = self.server.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        for close in self.closers:
            close()
        if self.server is not None:
            self.server.stop()
        if self.fake is not None:
            self.fake.stop()
        if self.app is not None:
            self.app.dispose()
        if self.archive is not None:
            self.archive.__exit__(*exc)
        if os.environ.get("SOPFLOW_OPERATOR_TOKEN") == self.operator_token:
            del os.environ["SOPFLOW_OPERATOR_TOKEN"]

    def settle(self) -> None:
        """Dispatch and deliver until nothing is due at the current clock."""
        run_until_idle(self.app)

    def advance_audiences(self) -> None:
        """Enrol one more batch of each nurture SOP whose audience is still being computed."""
        advance_audiences(self.app)

    def run_jobs(self, force: bool = False) -> None:
        """The scheduler's periodic plugin jobs that are due (the Salesforce sync and push),
        at most every ``JOBS_EVERY`` of simulated time unless ``force``: the daily sync
        needs no more, and a call per visited hour cost the demo seconds."""
        now = self.clock.now()
        if not force and self._jobs_at is not None and now - self._jobs_at < JOBS_EVERY:
            return
        self._jobs_at = now
        if self._scheduler is None:
            self._scheduler = Scheduler(self.app)
        self._scheduler.run_periodic_jobs()

    def pull_archive(self) -> None:
        """Run the WeCom plugin's archive pull job now, when the archived chat grew
        since the last pull: what the scheduler's tick does every ten seconds,
        on the demo's clock (the hours the demo skips hold no new messages)."""
        if self.archive is None or not self.archive.unpulled:
            return
        calls, upto = len(self.archive.fake.calls()), self.archive.fake.last_seq
        enqueue_job(self.app, ARCHIVE_PULL_JOB, {}, durable=False)
        if len(self.archive.fake.calls()) > calls:  # it pulled (else not due yet: the next hour)
            self.archive.pulled_seq = upto

    def poll_confirmations(self) -> None:
        """Ask the channel about the touches waiting for staff confirmation."""
        poll_confirmations(self.app)

    def create_tenant(self, name: str) -> tuple[int, ApiSession, str]:
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            r = http.post(
                "/api/v1/tenants",
                json={"name": name, "timezone": "Asia/Shanghai"},
                headers={"authorization": f"Bearer {self.operator_token}"},
            )
        if r.status_code != 201 and r.status_code != 200:
            raise DemoError(f"POST /api/v1/tenants answered {r.status_code}: {r.text[:300]}")
        body = r.json()
        return body["id"], ApiSession(self.base_url, body["api_key"]), body["api_key"]
