"""Shared fixtures: one fake clock drives both the fake WeCom and the client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sopflow_wecom.client import WeComClient
from sopflow_wecom.fake import FakeClock, FakeWeCom
from wecom_support import CALLBACK_AES_KEY, CALLBACK_TOKEN, StubAccount, StubHost, WeComApp

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    return json.loads((DATA / "wecom_callback_vectors.json").read_text(encoding="utf-8"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeWeCom]:
    with FakeWeCom(clock=clock) as server:
        yield server


@pytest.fixture
def make_client(fake: FakeWeCom, clock: FakeClock) -> Iterator[Callable[..., WeComClient]]:
    made: list[WeComClient] = []

    def make(**kwargs: Any) -> WeComClient:
        kwargs.setdefault("clock", clock)
        client = WeComClient(fake.corp_id, fake.secret, base_url=fake.base_url, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., WeComClient]) -> WeComClient:
    return make_client()


# -- a callback receiver: real HTTP in front of the plugin's route handler ----------------------


@pytest.fixture
def callback_receiver(fake: FakeWeCom) -> Iterator[tuple[str, StubHost]]:
    """Serve ``/plugins/wecom/callback/{account_id}`` with the plugin's handler."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qsl, urlsplit

    from sopflow_sdk import InboundRequest
    from sopflow_wecom.plugin import handle_callback

    host = StubHost(StubAccount(fake.corp_id), clock=fake.clock)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = InboundRequest(
                method=self.command,
                path=url.path,
                query=dict(parse_qsl(url.query)),
                headers=dict(self.headers),
                body=self.rfile.read(length) if length else b"",
                path_params={"account_id": url.path.rsplit("/", 1)[-1]},
            )
            response = handle_callback(request, host)
            body = response.body.encode() if isinstance(response.body, str) else response.body
            self.send_response(response.status)
            self.send_header("Content-Type", response.media_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/plugins/wecom/callback/7"
    fake.set_callback(url, CALLBACK_TOKEN, CALLBACK_AES_KEY)
    yield url, host
    server.shutdown()
    server.server_close()


# -- the plugin loaded into a real sopflow app (the SDK's test harness) ------------------------------


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    """Load this plugin into ``sopflow_app`` (the SDK fixture), under its entry-point name."""
    from sopflow_wecom import plugin

    return [("wecom", plugin)]


@pytest.fixture(autouse=True)
def _fresh_import_progress() -> Iterator[None]:
    """Import progress lives in process memory; every test starts without any."""
    from sopflow_wecom import tags
    from sopflow_wecom.importer import clear_progress

    clear_progress()
    tags.clear()  # account ids repeat across test databases; so would cached tag libraries
    yield
    clear_progress()
    tags.clear()


@pytest.fixture
def wecom_app(api: Any, test_client: Any, manual_clock: Any) -> Iterator[WeComApp]:
    """sopflow's API for a fresh tenant with a WeCom channel account on a fake WeCom
    that shares sopflow's manual clock and calls back over real HTTP."""
    from sopflow_sdk.testing import LiveServer

    with (
        FakeWeCom(clock=lambda: manual_clock.now().timestamp()) as fake,
        LiveServer(test_client.app) as live,
    ):
        made = api.post(
            "/api/v1/channel-accounts",
            json={
                "channel": "wecom",
                "name": "main",
                "config": {"corp_id": fake.corp_id, "agent_id": 1000002, "base_url": fake.base_url},
                "secrets": {
                    "secret": fake.secret,
                    "callback_token": CALLBACK_TOKEN,
                    "encoding_aes_key": CALLBACK_AES_KEY,
                },
            },
        )
        assert made.status_code == 201, made.text
        account_id = made.json()["id"]
        callback_url = f"{live.base_url}/plugins/wecom/callback/{account_id}"
        fake.set_callback(callback_url, CALLBACK_TOKEN, CALLBACK_AES_KEY)
        # sopflow answers a callback after its inline follow-ups (no broker here: the
        # profile job and the evaluate step run in the request); a loaded CI machine
        # took over WeCom's 5 s for one, and these tests check what it does, not its time
        fake.callback_timeout = 30.0
        yield WeComApp(api, fake, account_id, manual_clock)
