"""A JSON body is read as JSON says: ``0`` is not ``false``, ``"5"`` is not 5, and no NUL.

Litestar converts a handler's arguments with msgspec's lax rules
(``strict=False``), which path and query parameters need (they arrive as
text) but which also let a body say ``{"left": 1}`` for ``true`` or
``{"limit": "5"}`` for 5, against what the OpenAPI states.  This hook decodes
the body once more, strictly, before Litestar's conversion runs: a body that
only the lax rules take is refused with the same 422 as any other type error,
naming the field.  A body that fails either way is left to Litestar, so every
other error reads as it always did.

It also refuses a NUL character (``\\u0000``) in any key or string of any JSON
body, naming each place: Postgres cannot store one in text or JSONB, so it
would otherwise fail the write (the OpenAPI states it as a ``pattern`` on every
body string, api/body_schemas.py).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

from sopflow.conditions.storage import NUL_FIX, nul_paths

_AT = re.compile(r"(.*) - at `\$\.?(.*)`", re.S)
#: a handler whose JSON body is not a Struct (a free document): checked for NUL only
_FREE = object


@cache
def _body_type(handler: Any) -> type | None:
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    annotation = getattr(data, "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    return _FREE


def _integral(value: Any) -> Any:
    """``13.0`` as 13: JSON Schema counts a number with no fraction as an integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def _refuse(problems: list[tuple[str, str]]) -> ValidationException:
    extra = [{"message": message, "key": key, "source": "body"} for key, message in problems]
    detail = "; ".join(f"{key or 'body'}: {message}" for key, message in problems)
    return ValidationException(detail=detail, extra=extra)


async def strict_body(request: Request[Any, Any, Any]) -> None:
    """Litestar ``before_request`` for every route: ``None`` lets the request through."""
    body_type = _body_type(request.route_handler)
    if body_type is None or "json" not in request.headers.get("content-type", "json"):
        return
    try:
        body = msgspec.json.decode(await request.body())
    except msgspec.MsgspecError:
        return  # not JSON: Litestar says so
    nul = nul_paths(body, "")
    if nul:
        raise _refuse([(path, NUL_FIX) for path in nul])
    if body_type is _FREE:
        return
    body = _integral(body)
    try:
        msgspec.convert(body, body_type, strict=True)
    except msgspec.ValidationError as exc:
        try:
            msgspec.convert(body, body_type, strict=False)
        except msgspec.MsgspecError:
            return
        found = _AT.fullmatch(str(exc))
        raise _refuse([(found.group(2), found.group(1)) if found else ("", str(exc))]) from None
