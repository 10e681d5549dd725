"""``FakeSalesforce``: a real HTTPS server on 127.0.0.1 that behaves like an org.

simple-salesforce builds ``https://`` URLs from the instance host, so the fake
speaks TLS with a throwaway CA made by ``trustme``; a client trusts it through
``fake.ca_bundle`` (a PEM file).  Every API response carries
``Sforce-Limit-Info: api-usage=used/max``; every request is in
``fake.requests`` (the witness for "written exactly once"); faults are armed
with ``expire_tokens``, ``fail_next`` (503 with ``Retry-After``),
``exceed_limit`` (403 ``REQUEST_LIMIT_EXCEEDED``) and ``fail_record``.
"""

from __future__ import annotations

import json
import re
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs
import trustme

from sopflow_salesforce.fake import rest
from sopflow_salesforce.fake.bulk import BulkJobs
from sopflow_salesforce.fake.oauth import ConnectedApp, issue_token
from sopflow_salesforce.fake.org import Org

_DATA = re.compile(r"^/services/data/v(?P<version>\d+\.\d)/(?P<rest>.*)$")


@attrs.frozen
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any  # decoded JSON, or the raw text

    @property
    def resource(self) -> str:
        """The path after ``/services/data/vXX.X/`` (or the whole path)."""
        m = _DATA.match(self.path)
        return m["rest"] if m else self.path


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _answer(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, payload, headers = self.server.fake.handle(
            self.command, unquote(url.path), dict(parse_qsl(url.query)), dict(self.headers), raw
        )
        if isinstance(payload, str):
            body, kind = payload.encode("utf-8"), "text/csv; charset=UTF-8"
        else:
            body, kind = json.dumps(payload).encode("utf-8"), "application/json;charset=UTF-8"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSalesforce


class FakeSalesforce:
    """``with FakeSalesforce(app) as sf: sf.login_url`` — an org on 127.0.0.1."""

    def __init__(self, app: ConnectedApp | None = None, *, now: Callable[[], datetime] | None = None) -> None:
        self.org = Org(now)
        self.app = app
        self.requests: list[RecordedRequest] = []
        self.tokens: dict[str, bool] = {}
        self.bulk = BulkJobs()
        self.cursors = rest.Cursors()
        self.daily_max, self.api_used = 100_000, 0
        self.record_faults: dict[str, tuple[str, str]] = {}
        self.delete_log_starts: str | None = None
        self._faults: list[tuple[int, str, str, float | None]] = []
        self._lock = threading.Lock()
        self._ca = trustme.CA()
        self._dir = tempfile.TemporaryDirectory(prefix="fake-salesforce-")
        self.ca_bundle = str(Path(self._dir.name) / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_bundle)
        self._server: _Server | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> FakeSalesforce:
        server = _Server(("127.0.0.1", 0), _Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.fake = self
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True, name="fake-salesforce").start()
        if self.app is not None and not self.app.audience:
            self.app.audience = self.login_url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._dir.cleanup()

    def __enter__(self) -> FakeSalesforce:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def login_url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    instance_url = login_url

    # -- faults ---------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every issued token stops working: the next call gets 401 ``INVALID_SESSION_ID``."""
        with self._lock:
            self.tokens = dict.fromkeys(self.tokens, False)

    def fail_next(self, count: int = 1, *, status: int = 503, retry_after: float | None = 1) -> None:
        """The next ``count`` API calls answer ``status`` (503: "server unavailable")."""
        with self._lock:
            self._faults += [(status, "SERVER_UNAVAILABLE", "Server unavailable", retry_after)] * count

    def exceed_limit(self, count: int = 1) -> None:
        """The next ``count`` API calls answer 403 ``REQUEST_LIMIT_EXCEEDED``."""
        with self._lock:
            self._faults += [(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", None)] * count

    def fail_record(
        self, key: str, code: str = "FIELD_CUSTOM_VALIDATION_EXCEPTION", message: str = ""
    ) -> None:
        """The next upsert of the record with this key fails on its own (the rest applies)."""
        self.record_faults[str(key)] = (code, message or "rejected by a validation rule")

    def writes(self, object_name: str | None = None) -> list[RecordedRequest]:
        """The collection upserts received (optionally for one object)."""
        prefix = "composite/sobjects/" + (f"{object_name}/" if object_name else "")
        return [r for r in self.requests if r.method == "PATCH" and r.resource.startswith(prefix)]

    # -- dispatch -------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        try:
            body: Any = json.loads(raw) if raw and raw[:1] in (b"{", b"[") else raw.decode("utf-8", "replace")
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self.requests.append(RecordedRequest(method, path, dict(query), body))
        if path == "/services/oauth2/token" and method == "POST":
            if self.app is None:
                return 400, {"error": "invalid_client_id", "error_description": "no connected app"}, {}
            status, payload = issue_token(self.app, raw, time.time, self.instance_url, self.tokens)
            return status, payload, {}
        m = _DATA.match(path)
        if not m:
            return (*rest.error(404, "NOT_FOUND", "The requested resource does not exist"), {})
        status, payload, extra = self._api(method, m["version"], m["rest"].rstrip("/"), query, headers, raw)
        with self._lock:
            extra["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.daily_max}"
        return status, payload, extra

    def _api(
        self,
        method: str,
        version: str,
        resource: str,
        query: dict[str, str],
        headers: dict[str, str],
        raw: bytes,
    ) -> tuple[int, Any, dict[str, str]]:
        token = headers.get("Authorization", headers.get("authorization", "")).removeprefix("Bearer ")
        with self._lock:
            if not self.tokens.get(token):
                return (*rest.error(401, "INVALID_SESSION_ID", "Session expired or invalid"), {})
            self.api_used += 1
            if self._faults:
                status, code, message, retry_after = self._faults.pop(0)
                extra = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
                return (*rest.error(status, code, message), extra)
            if self.api_used > self.daily_max:
                return (*rest.error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), {})
        return self._route(method, version, resource, query, raw)

    def _route(
        self, method: str, version: str, resource: str, query: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = resource.split("/")
        if method == "GET" and parts == ["limits"]:
            return (*rest.limits(self), {})
        if method == "GET" and parts[0] == "query":
            if len(parts) == 2:
                return (*rest.query_more(self, version, parts[1]), {})
            return (*rest.query(self, version, query.get("q", "")), {})
        if parts[0] == "sobjects" and len(parts) == 3 and method == "GET":
            handler = {"describe": rest.describe}.get(parts[2])
            if handler is not None:
                return (*handler(self, parts[1]), {})
            if parts[2] in ("updated", "deleted"):
                fn = rest.updated if parts[2] == "updated" else rest.deleted
                return (*fn(self, parts[1], query), {})
        if parts[:2] == ["composite", "sobjects"] and len(parts) == 4 and method == "PATCH":
            return (*rest.upsert_collection(self, parts[2], parts[3], raw), {})
        if parts[:2] == ["jobs", "query"]:
            if len(parts) == 2 and method == "POST":
                return (*self.bulk.create(self, raw), {})
            if len(parts) == 3 and method == "GET":
                return (*self.bulk.status(self, parts[2]), {})
            if len(parts) == 4 and parts[3] == "results" and method == "GET":
                return self.bulk.results(parts[2], query)
        return (*rest.error(404, "NOT_FOUND", "The requested resource does not exist"), {})
