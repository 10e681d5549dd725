"""Request-body schemas in the OpenAPI document, written by msgspec itself.

Litestar translates a Struct's constraints into its own schema objects and
loses some on the way: the bounds of list items (``list[Tag]`` with non-empty
tags came out as any strings), a ``minimum`` of 0, a pattern inside an
optional.  msgspec validates the bodies, so its own JSON Schema of the same
types is the one that tells the truth: this replaces Litestar's components of
every request body (and the types they reference) with msgspec's, so the
schema and the validation come from the same annotations."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar

REF_TEMPLATE = "#/components/schemas/{name}"


def body_types(api: Litestar) -> list[type]:
    """The msgspec Struct every route takes as its body."""
    found: dict[str, type] = {}
    for route in api.routes:
        for handler in getattr(route, "route_handlers", ()):
            data = handler.parsed_fn_signature.parameters.get("data")
            annotation = getattr(data, "annotation", None)
            if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
                found[annotation.__name__] = annotation
    return [found[name] for name in sorted(found)]


def body_components(api: Litestar) -> dict[str, dict[str, Any]]:
    """msgspec's JSON Schema of every body type, keyed by component name."""
    _, components = msgspec.json.schema_components(body_types(api), ref_template=REF_TEMPLATE)
    return components


#: Body properties that hold a rule: the server parses them itself (every problem
#: at once, with its path), and the OpenAPI states the language they are written
#: in (conditions/schema.py, held to the parser by tests/conditions/test_rule_schema.py).
RULE_PROPERTIES: dict[str, tuple[str, ...]] = {
    "SegmentCreate": ("rule",),
    "PreviewRequest": ("rule",),
}


def rule_language(components: dict[str, Any]) -> None:
    """The rule language's components, and each rule-holding property pointed at them."""
    from sopflow.conditions.schema import ref, rule_components

    components.update(rule_components())
    for body, keys in RULE_PROPERTIES.items():
        for key in keys:
            components[body]["properties"][key] = ref("Rule")


#: Body properties that hold an SOP definition (engine/sops/schema.py, held to
#: the parser by tests/test_sop_schema.py), and whether null is taken (no change).
DEFINITION_PROPERTIES: dict[str, bool] = {
    "SopCreate": False,
    "SopUpdate": True,
    "SopForecastRequest": True,
}


def sop_definitions(components: dict[str, Any], app: Any) -> None:
    """The SOP definition's components, for the installed step actions and channels."""
    from sopflow.engine.sops.schema import ChannelSteps, definition_components
    from sopflow.engine.sops.step_actions import CoreActionSpec

    specs = [r.spec for r in app.plugins.registry.all("register_actions")]
    actions = {spec.name: spec.params_schema for spec in specs}
    core = {spec.name for spec in specs if isinstance(spec, CoreActionSpec)}
    channels = {
        spec.name: ChannelSteps(
            frozenset(spec.capabilities.touchpoints),
            spec.capabilities.max_attachments,
            spec.step_params.json_schema() if spec.step_params.settings else None,
        )
        for spec in (r.spec for r in app.plugins.registry.all("register_channels"))
    }
    components.update(definition_components(actions, core, channels))
    for body, nullable in DEFINITION_PROPERTIES.items():
        definition = ref_to("SopDefinition")
        components[body]["properties"]["definition"] = (
            {"anyOf": [definition, {"type": "null"}]} if nullable else definition
        )


def ref_to(name: str) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(name=name)}


#: A keyword rule's parts that its parser checks whole (every problem at once, so
#: the Structs take any value there), stated by engine/keywords/schema.py.
KEYWORD_PROPERTIES = {"name": "KeywordRuleName", "keywords": "KeywordList", "actions": "KeywordActions"}
#: Operations whose body the engine's parser reads as any JSON (every problem at
#: once), pointed at the schema of what it takes (engine/journeys/schema.py).
PARSED_BODIES = {
    ("/api/v1/journeys", "post"): "JourneyCreate",
    ("/api/v1/journeys/{journey_id}", "patch"): "JourneyUpdate",
}


def parsed_parts(components: dict[str, Any], app: Any) -> None:
    """The journey and keyword-rule components (both held to their parsers by
    tests/test_journey_schema.py), and the keyword rules' properties pointed at them."""
    from sopflow.engine.journeys.schema import journey_components
    from sopflow.engine.keywords.schema import keyword_components

    channels = sorted(r.spec.name for r in app.plugins.registry.all("register_channels"))
    templates = sorted(r.spec.key for r in app.plugins.registry.all("register_pipelines"))
    components.update(journey_components(channels, templates, app.settings.max_journey_stages))
    components.update(keyword_components())
    for key, name in KEYWORD_PROPERTIES.items():
        components["KeywordRuleCreate"]["properties"][key] = ref_to(name)
        components["KeywordRuleUpdate"]["properties"][key] = {"anyOf": [ref_to(name), {"type": "null"}]}


def point_parsed_bodies(document: Any) -> None:
    """Each ``PARSED_BODIES`` operation's request body refers to its component."""
    from litestar.openapi.spec import Reference

    for (path, method), name in PARSED_BODIES.items():
        body = getattr(document.paths[path], method).request_body
        body.content["application/json"].schema = Reference(ref=REF_TEMPLATE.format(name=name))


def installed_choices(components: dict[str, Any], app: Any) -> None:
    """What depends on the installed plugins, stated in the bodies' schemas: the
    channel names an account takes (each with its declared settings) and the
    pipeline templates a pipeline can start from."""
    from sopflow.api.schemas import CROSS_FIELD

    rule_language(components)
    sop_definitions(components, app)
    parsed_parts(components, app)
    for name, extra in CROSS_FIELD.items():
        components[name] = {**components[name], **extra}
    channels = sorted(r.spec.name for r in app.plugins.registry.all("register_channels"))
    for body in ("ChannelAccountCreate",):
        channel = components[body]["properties"]["channel"]
        channel["enum"] = channels
        components[body]["oneOf"] = [_channel_case(c, components) for c in channels]
    templates = sorted(r.spec.key for r in app.plugins.registry.all("register_pipelines"))
    template = components["PipelineCreate"]["properties"]["template"]
    template["anyOf"] = [{"type": "string", "enum": templates}] if templates else []
    template["anyOf"].append({"type": "null"})


def _channel_case(channel: str, components: dict[str, Any]) -> dict[str, Any]:
    case: dict[str, Any] = {"properties": {"channel": {"const": channel}}}
    for key, prefix in (("config", "ChannelConfig"), ("secrets", "ChannelSecrets")):
        if f"{prefix}.{channel}" in components:
            case["properties"][key] = {"$ref": REF_TEMPLATE.format(name=f"{prefix}.{channel}")}
    return case
