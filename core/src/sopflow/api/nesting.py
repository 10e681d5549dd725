"""Refuse JSON bodies nested deeper than a limit before any parser walks them.

A decoder recurses once per level: a body of a few kilobytes of ``[`` would
otherwise reach Python's recursion limit inside the handler and answer 500 on
every JSON route, read-only ones included.  The scan skips string contents (a
``[`` inside a string is not a level) and runs at C speed through one regex."""

from __future__ import annotations

import json
import re
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

#: How deep a request body may nest.  Rules nest (all/any/not), SOP definitions
#: three or four levels; 64 leaves room for every real document.
MAX_JSON_DEPTH = 64

_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


def nests_deeper_than(body: bytes, limit: int) -> bool:
    """True when a JSON document ``body`` opens more than ``limit`` levels."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for match in _TOKENS.finditer(body):
        first = match.group()[0]
        if first in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif first in _CLOSE:
            depth -= 1
    return False


def _looks_like_json(body: bytes) -> bool:
    head = body.lstrip()[:1]
    return head in (b"[", b"{")


async def _refuse(scope: Scope, send: Send) -> None:
    problem = {
        "type": "about:blank",
        "title": "Bad request",
        "status": 400,
        "detail": f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels; flatten it",
        "instance": scope["path"],
    }
    body = json.dumps(problem).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def nesting_guard(max_body_bytes: int) -> Any:
    """ASGI middleware: buffer a body (up to ``max_body_bytes``; a larger one is
    passed on for the size limit to refuse) and refuse it when it nests too deep."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["method"] in _BODYLESS:
                await app(scope, receive, send)
                return
            buffered: list[Message] = []
            size, more = 0, True
            while more and size <= max_body_bytes:
                message = await receive()
                buffered.append(message)
                if message["type"] != "http.request":
                    break
                size += len(message.get("body", b""))
                more = message.get("more_body", False)
            if not more:
                body = b"".join(m.get("body", b"") for m in buffered if m["type"] == "http.request")
                if _looks_like_json(body) and nests_deeper_than(body, MAX_JSON_DEPTH):
                    await _refuse(scope, send)
                    return

            async def replay() -> Message:
                return buffered.pop(0) if buffered else await receive()

            await app(scope, replay, send)

        return guarded

    return middleware
