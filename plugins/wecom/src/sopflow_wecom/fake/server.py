"""``FakeWeCom``: a real HTTP server on 127.0.0.1 that behaves like WeCom.

Tests talk to it over real HTTP with the real client, so token handling, rate
limits, redaction and error mapping are exercised end to end.  It also plays
WeCom's other half: it POSTs encrypted callbacks to a configured URL and runs
the GET echostr handshake, using the same crypto module as the plugin.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sopflow_wecom.fake import (  # noqa: F401  (they register their routes)
    api,
    moments_api,
    sidebar_api,
    tag_api,
    transfer_api,
)
from sopflow_wecom.fake.routing import ROUTES
from sopflow_wecom.fake.scenario import FakeScenario
from sopflow_wecom.fake.state import ApiError, RecordedRequest

_PREFIX = "/cgi-bin/"
#: ``handle``'s status for a request whose answer is lost (``lose_answer``)
LOST = -1


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _answer(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not url.path.startswith(_PREFIX):
            self.send_error(404)
            return
        status, payload = self.server.fake.handle(
            self.command, url.path[len(_PREFIX) :], dict(parse_qsl(url.query)), raw
        )
        if status == LOST:  # the answer never arrives: the client sees the connection drop
            self.close_connection = True
            return
        if payload is None:
            self.send_error(status)
            return
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeWeCom


class FakeWeCom(FakeScenario):
    """A fake WeCom for one corp (add more with ``add_corp``).

    Use as a context manager: ``with FakeWeCom(clock=clock) as fake: fake.base_url``.
    ``limits`` maps an API path to ``[(count, period_seconds), ...]``;
    ``mass_send_cap`` is ``(count, "day"|"week"|"month")`` (default: days of the month).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        corp_id: str = "wwfakecorp0000001",
        secret: str = "fake-app-secret-0123456789",
        *,
        expires_in: int = 7200,
        limits: Mapping[str, Sequence[tuple[int, float]]] | None = None,
        mass_send_cap: tuple[int, str] | None = None,
        agent_id: int = 1000002,
    ) -> None:
        super().__init__(clock, corp_id, secret, expires_in, limits, mass_send_cap, agent_id)
        self.secret = secret
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeWeCom:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.close_callback_client()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeWeCom:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first (use it as a context manager)"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/cgi-bin"

    # -- request handling -------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], raw: bytes) -> tuple[int, Any]:
        """Answer one API request: ``(http_status, json_payload)``; ``payload`` is
        ``None`` for a bare HTTP error and ``status`` is ``LOST`` for no answer."""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        with self.lock:
            record = RecordedRequest(method, path, query, body, self.clock())
            self.requests.append(record)
            if path != "gettoken" and path not in ROUTES:
                # WeCom documents no errcode for an API that does not exist: the fake
                # invents none and answers as a web server does (see _answer).
                return 404, None
            lost = self.lost_answers.get(path)
            if lost and not lost[0]:  # lost before WeCom acted on it
                lost.pop(0)
                return LOST, None
            try:
                if not isinstance(body, dict):
                    raise ApiError(47001, "data format error")
                if path == "gettoken":
                    record.corp_id = query.get("corpid")
                    self.check_rate(query.get("corpid", ""), path)
                    self.take_failure(path)
                    answer = self.issue_token(query.get("corpid", ""), query.get("corpsecret", ""))
                else:
                    record.corp_id = self.corp_for_token(query.get("access_token"))
                    self.check_rate(record.corp_id, path)
                    self.take_failure(path)
                    answer = ROUTES[path](self, query, body)
            except ApiError as exc:
                record.errcode = exc.errcode
                return 200, {"errcode": exc.errcode, "errmsg": exc.errmsg}
            record.errcode = 0
            if lost:  # WeCom acted on it, then the answer was lost
                lost.pop(0)
                return LOST, None
            return 200, {"errcode": 0, "errmsg": "ok", **answer}

    def count(self, path: str) -> int:
        """How many requests reached ``path`` (whatever the answer)."""
        return sum(1 for r in self.requests if r.path == path)
