"""Success-body schemas in the OpenAPI document, written by msgspec itself.

Each handler declares its success body as a response Struct (api/responses/);
Litestar documents the operation from that return type.  As for the request
bodies (api/body_schemas.py), msgspec's own JSON Schema of the same types
replaces Litestar's translation, so what the document states is what msgspec
encodes: a key that may be absent (``UNSET``) is not required, a nullable one
says ``null``."""

from __future__ import annotations

import typing
from typing import Any

import msgspec
from litestar import Litestar, Response

from sopflow.api.body_schemas import REF_TEMPLATE


def _structs(annotation: Any, found: dict[str, type]) -> None:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        found[annotation.__name__] = annotation
        return
    for arg in typing.get_args(annotation):
        _structs(arg, found)


def response_types(api: Litestar) -> list[type]:
    """The response Struct of every route (unwrapping lists and ``Response[...]``)."""
    found: dict[str, type] = {}
    for route in api.routes:
        for handler in getattr(route, "route_handlers", ()):
            annotation = handler.parsed_fn_signature.return_type.annotation
            if typing.get_origin(annotation) is Response:
                annotation = typing.get_args(annotation)[0]
            _structs(annotation, found)
    return [found[name] for name in sorted(found)]


def response_components(api: Litestar) -> dict[str, dict[str, Any]]:
    """msgspec's JSON Schema of every response type, keyed by component name."""
    _, components = msgspec.json.schema_components(response_types(api), ref_template=REF_TEMPLATE)
    return components
