"""Map every error to an RFC 9457 problem document (application/problem+json)."""

from __future__ import annotations

import re
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from sopflow_sdk import FIELD_TYPES, SopflowError

from sopflow.api.outages import outage_response
from sopflow.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    LimitReached,
    NotFound,
    Unauthorized,
)
from sopflow.logging import get_logger

log = get_logger("sopflow.api")
PROBLEM_JSON = "application/problem+json"


def _response(body: dict[str, Any]) -> Response[Any]:
    return Response(content=body, status_code=body["status"], media_type=PROBLEM_JSON)


#: Domain error → (status, title), most specific first: the one place the
#: engine's errors get HTTP semantics.
STATUS: tuple[tuple[type[DomainError], int, str], ...] = (
    (InvalidInput, 422, "Invalid input"),
    (NotFound, 404, "Not found"),
    (LimitReached, 409, "Limit reached"),
    (Conflict, 409, "Conflict"),
    (Unauthorized, 401, "Unauthorized"),
    (Forbidden, 403, "Forbidden"),
)


def problem_body(exc: DomainError, instance: str | None = None) -> dict[str, Any]:
    """The problem details of a domain error."""
    status, title = next(((s, t) for cls, s, t in STATUS if isinstance(exc, cls)), (400, "Bad request"))
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": exc.detail}
    if instance:
        body["instance"] = instance
    if exc.errors:
        body["errors"] = exc.errors
    return body


def handle_problem(request: Request, exc: DomainError) -> Response[Any]:
    return _response(problem_body(exc, instance=request.url.path))


def _field_path(extra: dict[str, Any]) -> str:
    key = extra.get("key") or ""
    source = extra.get("source") or "body"
    return key if source == "body" else f"{source}.{key}"


_DECODE_ERRORS = ("malformed", "truncated", "invalid json", "expecting", "trailing characters")


def _is_decode_error(detail: str) -> bool:
    return any(marker in detail.lower() for marker in _DECODE_ERRORS)


_ENUM_VALUE = re.compile(r"Invalid enum value (.+?)(?: - at `[^`]*`)?$")
_UNKNOWN_KEY = re.compile(r"Object contains unknown field `([^`]+)`(?: - at `\$\.?([^`]*)`)?")

#: A newcomer's common mistake, per route: what to do with an unknown top-level key.
_UNKNOWN_KEY_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"/api/v1/sops(/\d+)?/?"),
        'an SOP is {"name": ..., "definition": {"kind": ..., "steps": [...]}}: '
        'put `{key}` inside "definition"',
    ),
)


_PATTERN = re.compile(r"Expected `str` matching regex '(.*)'(?: - at `[^`]*`)?", re.S)


def _pattern_hint(regex: str) -> str:
    """What to send instead of a value that misses a schema pattern (msgspec
    states the regex, which tells a newcomer little)."""
    from sopflow.api.schemas import NOT_BLANK
    from sopflow.engine.customers.fields import FIELD_KEY_PATTERN
    from sopflow.pagination import CURSOR_PATTERN

    hints = {
        NOT_BLANK.replace("\\", "\\\\"): "empty or blank; give at least one non-space character (and no NUL)",
        FIELD_KEY_PATTERN: "use lower_snake_case, 1–63 characters, starting with a letter",
        CURSOR_PATTERN: "not a cursor from a previous page; omit it to start over",
    }
    return next((h for p, h in hints.items() if regex in (p, p.replace("\\\\", "\\"))), f"must match {regex}")


def _body_error(path: str, item: dict[str, Any]) -> dict[str, str]:
    """One validation problem, named by the key it is about (msgspec names the
    object holding an unknown key, not the key)."""
    field, message = _field_path(item) or "body", str(item.get("message", "invalid value"))
    pattern = _PATTERN.fullmatch(message)
    if pattern:
        message = _pattern_hint(pattern.group(1))
    enum_value = _ENUM_VALUE.match(message)
    if enum_value:
        value = enum_value.group(1)
        if field.endswith("timezone"):
            message = f"{value} is not an IANA time zone name; use e.g. 'Asia/Shanghai'"
        elif field == "type" and path.rstrip("/") == "/api/v1/fields":
            message = f"{value} is not a field type; use one of {', '.join(FIELD_TYPES)}"
        else:
            message = f"{value} is not one of the accepted values; see the request schema at /schema"
    unknown = _UNKNOWN_KEY.fullmatch(message)
    if unknown:
        key, at = unknown.group(1), unknown.group(2)
        top = field in ("data", "body") and not at
        field = key if top else f"{at if field in ('data', 'body') else field}.{key}"
        hint = next((h for route, h in _UNKNOWN_KEY_HINTS if top and route.fullmatch(path)), None)
        message = hint.replace("{key}", key) if hint else "unknown key; see the request schema at /schema"
    return {"field": field, "message": message}


def handle_validation(request: Request, exc: ValidationException) -> Response[Any]:
    errors = [_body_error(request.url.path, item) for item in exc.extra or [] if isinstance(item, dict)]
    detail = exc.detail or "the request is invalid"
    if not errors and _is_decode_error(detail):
        detail = "the request body is not valid JSON; send a JSON object with Content-Type: application/json"
    elif errors:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    status = 400 if not errors else 422
    body = {
        "type": "about:blank",
        "title": "Invalid input" if errors else "Bad request",
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    return _response(body)


def handle_http(request: Request, exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail = exc.detail
    if status == 400 and _is_decode_error(str(detail)):
        detail = f"the request body is not valid JSON ({detail}); send a JSON object"
    elif status == 413:
        limit = request.app.state.sopflow.settings.max_body_bytes
        detail = f"the request body is larger than {limit} bytes; send smaller batches"
    elif status == 404:
        detail = f"no route {request.url.path}; see /schema for the API"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}; see /schema"
    body = {
        "type": "about:blank",
        "title": detail if status < 500 else "Server error",
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body["title"] = {
        400: "Bad request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        413: "Request too large",
        415: "Unsupported media type",
    }.get(status, body["title"])
    return Response(
        content=body, status_code=status, media_type=PROBLEM_JSON, headers=getattr(exc, "headers", None)
    )


def handle_sdk_error(request: Request, exc: SopflowError) -> Response[Any]:
    log.warning("request_failed", path=request.url.path, error=exc.internal_message)
    return _response(
        {
            "type": "about:blank",
            "title": "Unprocessable",
            "status": 422,
            "detail": exc.user_message,
            "instance": request.url.path,
        }
    )


def handle_unexpected(request: Request, exc: Exception) -> Response[Any]:
    outage = outage_response(request, exc)
    if outage is not None:
        return outage
    log.exception("unhandled_error", path=request.url.path)
    return _response(
        {
            "type": "about:blank",
            "title": "Server error",
            "status": 500,
            "detail": "an unexpected error occurred; it was logged",
            "instance": request.url.path,
        }
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: handle_problem,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    SopflowError: handle_sdk_error,
    Exception: handle_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "MediaType"]
