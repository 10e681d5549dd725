"""Errors the API turns into RFC 9457 problem details.

Each names the field (as a JSON path into the request) and says how to fix it.
Raised from engine code too, so the CLI and workers report the same words.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Problem(Exception):
    status = 400
    title = "Bad request"
    type = "about:blank"

    def __init__(self, detail: str, errors: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = [{"field": f, "message": m} for f, m in errors]

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return body


class InvalidInput(Problem):
    status = 422
    title = "Invalid input"

    def __init__(self, errors: Iterable[tuple[str, str]], detail: str | None = None) -> None:
        errors = list(errors)
        summary = detail or "; ".join(f"{f}: {m}" for f, m in errors)
        super().__init__(summary, errors)


class NotFound(Problem):
    status = 404
    title = "Not found"

    def __init__(self, resource: str, key: Any) -> None:
        super().__init__(f"{resource} {key!s} does not exist in this tenant")


class Conflict(Problem):
    status = 409
    title = "Conflict"


class Unauthorized(Problem):
    status = 401
    title = "Unauthorized"


class Forbidden(Problem):
    status = 403
    title = "Forbidden"
