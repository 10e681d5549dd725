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


#: Response properties holding a document the OpenAPI states once as its own
#: component: the stored SOP definition and a segment's rule.
DOCUMENT_PROPERTIES: dict[str, tuple[str, str]] = {
    "SopOut": ("definition", "SopStoredDefinition"),
    "StoppedSopOut": ("definition", "SopStoredDefinition"),
    "SopVersionOut": ("definition", "SopStoredDefinition"),
    "SegmentOut": ("rule", "Rule"),
}


def stored_definition(written: dict[str, Any]) -> dict[str, Any]:
    """An SOP definition as stored and read back: the normalised ``SopDefinition``
    (engine/sops/definition.py), with every key but ``arms`` present and, with
    arms, the top-level ``steps`` derived from them (the arms' steps in order, which
    JSON Schema cannot compare); or a journey stage's reminder SOP, which its journey
    makes (engine/journeys/reminders.py)."""
    keys = [k for k in written["properties"] if k != "arms"]
    sop = {
        **written,
        "required": keys,
        # the written form's steps-or-arms choice does not hold: both are there with arms
        "allOf": [clause for clause in written["allOf"] if "if" in clause],
    }
    sop.pop("description", None)
    journey = {
        "type": "object",
        "properties": {
            "journey_id": {"type": "integer"},
            "stage_id": {"type": "integer"},
            "follow_up": {"type": "boolean"},
        },
        "required": ["journey_id", "stage_id", "follow_up"],
        "additionalProperties": False,
    }
    reminders = {
        "type": "object",
        "description": "a journey stage's reminder SOP (docs/journeys.md): edited through its journey",
        "properties": {**written["properties"], "kind": {"const": "journey_stage"}, "journey": journey},
        "required": [*keys, "journey"],
        "additionalProperties": False,
    }
    return {
        "description": "an SOP definition as stored (docs/sops.md): normalised, every setting present",
        "anyOf": [sop, reminders],
    }


def response_documents(components: dict[str, Any], channels: list[str]) -> None:
    """Point the response properties that hold a stated document at its component;
    a channel account's ``config`` at its channel's declared settings, where it
    declares them (``ChannelConfig.<channel>``: the plain settings only, unknown
    keys refused, so a secret cannot appear), else any object."""
    components["SopStoredDefinition"] = stored_definition(components["SopDefinition"])
    for body, (key, component) in DOCUMENT_PROPERTIES.items():
        described = components[body]["properties"][key]
        components[body]["properties"][key] = {
            "$ref": REF_TEMPLATE.format(name=component),
            **({"description": described["description"]} if "description" in described else {}),
        }
    declared = [c for c in channels if f"ChannelConfig.{c}" in components]
    if declared:
        components["ChannelAccountOut"]["allOf"] = [
            {
                "if": {"properties": {"channel": {"const": c}}},
                "then": {"properties": {"config": {"$ref": REF_TEMPLATE.format(name=f"ChannelConfig.{c}")}}},
            }
            for c in declared
        ]
