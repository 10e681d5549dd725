"""Shared fixtures: one fake clock drives both the fake WeCom and the client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sopflow_wecom.client import WeComClient
from sopflow_wecom.fake import FakeClock, FakeWeCom
from wecom_support import CALLBACK_AES_KEY, CALLBACK_TOKEN, StubAccount, StubHost

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

    host = StubHost(StubAccount(fake.corp_id))

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
