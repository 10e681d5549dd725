"""An SOP definition as JSON Schema, built from the parser's own constants.

:func:`sopflow.engine.sops.definition.validate_definition` stays the one that
decides (every problem at once, with its path and fix); this states the same
shape for the OpenAPI document, as ``sopflow.conditions.schema`` does for rules,
and ``tests/test_sop_schema.py`` holds the two to agreeing.  Rules (the target,
``early_end``, a goal) are the ``Rule`` component.

What depends on what is installed is passed in: the step action types
(``register_actions``; a core action is stated key by key, a plugin's by the
``params_schema`` it declares, else an open object keyed by its ``type``) and the
channels a message step may name (each with the step parameters it declares).
What a schema cannot state is left to the parser and named in the descriptions:
whether a template compiles and stays within its render bounds, whether a
channel, stage, field or flow target exists for the tenant, that arm names are
unique, that the welcome touchpoint is only in a new_customer SOP's first,
immediate step, and the total of an SOP's steps over its arms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from sopflow_sdk import ATTACHMENT_KINDS, LEGACY_ACTION_TYPE, MAX_ATTACHMENTS

from sopflow.conditions.parse import MAX_ID
from sopflow.conditions.schema import NO_NUL, NOT_BLANK, ref
from sopflow.engine.sops.definition import (
    ARM_NAME,
    CATCH_UP,
    HHMM,
    KINDS,
    MAX_ARMS,
    MAX_BATCH,
    MAX_DAY,
    MAX_STEPS,
    MAX_TAG,
    MAX_TEXT,
    SEND_TOUCHPOINTS,
    WAIT_ON_REPLY,
    WAIT_ON_TIMEOUT,
)

#: the channel a message step uses when it names none
DEFAULT_CHANNEL = "log"


def object_schema(
    properties: Mapping[str, Any], required: Iterable[str] = (), **extra: Any
) -> dict[str, Any]:
    """A closed object: these properties, these required, nothing else."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
        **extra,
    }


def nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` or ``null``."""
    return {"anyOf": [dict(schema), {"type": "null"}]}


def _strings(what: str) -> dict[str, Any]:
    return nullable(
        {"type": "array", "items": {"type": "string", "minLength": 1}, "description": f"{what}s, none empty"}
    )


HHMM_SCHEMA = {
    "type": "string",
    "pattern": f"^{HHMM.pattern}$",
    "description": "a local time 'HH:MM' (24-hour)",
}
_TEXT = {
    "type": "string",
    "maxLength": MAX_TEXT,
    "pattern": NO_NUL,
    "description": f"a message template of at most {MAX_TEXT} characters "
    "(Jinja: {{ customer.display_name }}); its syntax and render bounds are checked "
    "when the SOP is saved (see docs/sops.md)",
}
_TAG = {"type": "string", "maxLength": MAX_TAG, "pattern": NOT_BLANK}


class ChannelSteps(NamedTuple):
    """What a channel declares for a message step: its touchpoints, how many
    attachments it takes, and its step parameters (a JSON Schema object, or None)."""

    touchpoints: frozenset[str]
    max_attachments: int
    params: dict[str, Any] | None = None


def _attachments(most: int) -> dict[str, Any]:
    return nullable(
        {
            "type": "array",
            "maxItems": most,
            "items": {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"type": "string", "enum": list(ATTACHMENT_KINDS)}},
            },
            "description": f"at most {most} attachments (the channel's limit)",
        }
    )


def message_cases(kind: str, channels: Mapping[str, ChannelSteps]) -> list[dict[str, Any]]:
    """A ``send`` or ``remind_staff`` action, one case per installed channel that
    declares a touchpoint for it: the core keys and the step parameters the channel
    declares (its ``ChannelSpec.step_params``).  Without ``channel`` a step uses ``log``."""
    cases = []
    for name, steps in sorted(channels.items()):
        declared = steps.params or {}
        core: dict[str, Any] = {
            "type": {"const": kind},
            "text": _TEXT,
            "attachments": _attachments(min(MAX_ATTACHMENTS, steps.max_attachments)),
        }
        required = ["type", "text", *declared.get("required", ())]
        if kind == "send":
            points = [t for t in SEND_TOUCHPOINTS if t in steps.touchpoints]
            if not points:
                continue
            core["touchpoint"] = {"type": "string", "enum": points, "default": "private_chat"}
            if "private_chat" not in points:
                required.append("touchpoint")
        else:
            if "staff_notice" not in steps.touchpoints:
                continue
            core["forward"] = {
                "type": "boolean",
                "default": False,
                "description": "the staff member forwards it",
            }
        if name != DEFAULT_CHANNEL:
            required.append("channel")
        properties = {**declared.get("properties", {}), **core, "channel": {"const": name}}
        cases.append(object_schema(properties, required, description=f"{kind} on the channel {name!r}"))
    return cases


def core_action_cases(channels: Mapping[str, ChannelSteps]) -> dict[str, list[dict[str, Any]]]:
    """The built-in actions (``sopflow.defaults.actions``), by name."""
    identifier = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    return {
        "send": message_cases("send", channels),
        "remind_staff": message_cases("remind_staff", channels),
        "set_field": [
            object_schema(
                {
                    "type": {"const": "set_field"},
                    "field": {"type": "string", "description": "a writable field of the tenant"},
                    "value": {"description": "a value of the field's type"},
                },
                ["type", "field"],
            )
        ],
        "add_tag": [object_schema({"type": {"const": "add_tag"}, "tag": _TAG}, ["type", "tag"])],
        "remove_tag": [object_schema({"type": {"const": "remove_tag"}, "tag": _TAG}, ["type", "tag"])],
        "move_stage": [
            object_schema(
                {"type": {"const": "move_stage"}, "stage_id": {**identifier, "description": "a stage's id"}},
                ["type", "stage_id"],
            )
        ],
        "webhook": [
            object_schema(
                {
                    "type": {"const": "webhook"},
                    "url": {"type": "string", "pattern": "^https?://"},
                    "idempotent": {"type": "boolean", "default": False},
                },
                ["type", "url"],
            )
        ],
    }


def plugin_action_case(name: str, params_schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """A plugin's action: its declared ``params_schema`` with the ``type`` key, or
    an open object keyed by its type where it declares none."""
    declared = dict(params_schema or {})
    properties = {**declared.get("properties", {}), "type": {"const": name}}
    out: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": ["type", *declared.get("required", ())],
        "description": f"the plugin action {name!r}"
        + ("" if params_schema else ": its parameters are not declared, so any object is taken"),
    }
    if "additionalProperties" in declared:
        out["additionalProperties"] = declared["additionalProperties"]
    return out


def action_schema(
    actions: Mapping[str, Mapping[str, Any] | None],
    core: Iterable[str],
    channels: Mapping[str, ChannelSteps],
) -> dict[str, Any]:
    """One step action: a oneOf by ``type`` over ``actions`` (name → the declared
    ``params_schema``); the names in ``core`` are the built-ins, stated key by key."""
    built_in = core_action_cases(channels)
    cases: list[dict[str, Any]] = []
    for name in sorted(actions):
        if name in core and name in built_in:
            cases.extend(built_in[name])
        else:
            cases.append(plugin_action_case(name, actions[name]))
    plugin_names = sorted(n for n in actions if n not in core)
    if plugin_names:  # the older form of a plugin action
        cases.append(
            object_schema(
                {
                    "type": {"const": LEGACY_ACTION_TYPE},
                    "action": {"type": "string", "enum": plugin_names},
                    "params": {"type": "object"},
                },
                ["type", "action"],
                description="the older form of a plugin action: {type: plugin, action, params}",
            )
        )
    return {
        "anyOf": cases,
        "description": "an action by its type (GET /api/v1/plugins lists the tenant's); a channel, "
        "field or stage it names must be the tenant's and enabled",
    }


def step_schema() -> dict[str, Any]:
    """A step: ``delay`` after the previous one, or ``day`` + ``at`` after enrolment."""
    common = {
        "actions": {"type": "array", "minItems": 1, "items": ref("SopAction")},
        "wait_for_reply": nullable(
            object_schema(
                {
                    "timeout": ref("RuleDuration"),
                    "on_reply": {"type": "string", "enum": list(WAIT_ON_REPLY), "default": "continue"},
                    "on_timeout": {"type": "string", "enum": list(WAIT_ON_TIMEOUT), "default": "continue"},
                },
                ["timeout"],
                description="wait this long for a reply before the next step",
            )
        ),
    }
    return {
        "oneOf": [
            object_schema({"delay": ref("RuleDuration"), **common}, ["delay", "actions"]),
            object_schema(
                {
                    "day": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": MAX_DAY,
                        "description": "0: enrolment day",
                    },
                    "at": HHMM_SCHEMA,
                    **common,
                },
                ["day", "at", "actions"],
            ),
        ],
        "description": "a step: 'delay' after the previous step, or 'day' + 'at' (local time) "
        "after enrolment",
    }


def _end() -> dict[str, Any]:
    return nullable(
        object_schema(
            {
                "tags_add": _strings("tag"),
                "flow_to": nullable(
                    {"type": "integer", "minimum": 1, "maximum": MAX_ID, "description": "a nurture SOP's id"}
                ),
            }
        )
    )


def definition_schema() -> dict[str, Any]:
    """The whole definition (``SopDefinition``).

    Long because it is one JSON Schema document written out key by key, in the
    order docs/sops.md describes them: split, it would be harder to check
    against the parser, not easier."""
    steps = {"type": "array", "minItems": 1, "maxItems": MAX_STEPS, "items": ref("SopStep")}
    arm = object_schema(
        {
            "name": {"type": "string", "pattern": f"^{ARM_NAME.pattern}$"},
            "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000},
            "steps": {"type": "array", "minItems": 1, "items": ref("SopStep")},
        },
        ["name", "weight", "steps"],
    )
    properties: dict[str, Any] = {
        "kind": {"type": "string", "enum": list(KINDS)},
        "target": nullable(
            object_schema(
                {"rule": nullable(ref("Rule")), "sources": _strings("source"), "staff": _strings("staff id")}
            )
        ),
        "steps": steps,
        "arms": nullable(
            {
                "type": "array",
                "minItems": 2,
                "maxItems": MAX_ARMS,
                "items": arm,
                "description": f"a random split: each arm its own name, "
                f"at most {MAX_STEPS} steps over all arms",
            }
        ),
        "batch": nullable(
            object_schema(
                {
                    "size": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH},
                    "interval": ref("RuleDuration"),
                },
                ["size", "interval"],
            )
        ),
        "quiet_hours": nullable(object_schema({"start": HHMM_SCHEMA, "end": HHMM_SCHEMA}, ["start", "end"])),
        "catch_up": {"type": "string", "enum": list(CATCH_UP), "default": "send_now"},
        "early_end": nullable(ref("Rule")),
        "on_early_end": _end(),
        "on_complete": _end(),
        "reentry": {"type": "boolean", "default": False},
        "goal": nullable(
            {
                "oneOf": [
                    object_schema({"event_type": {"type": "string", "minLength": 1}}, ["event_type"]),
                    object_schema({"rule": nullable(ref("Rule"))}, ["rule"]),
                ]
            }
        ),
        "goal_window_days": {"type": "integer", "minimum": 1, "maximum": 365, "default": 7},
    }
    nurture_audience = {
        "required": ["target"],
        "properties": {
            "target": {
                "type": "object",
                "anyOf": [
                    {"required": ["rule"], "properties": {"rule": {"type": "object"}}},
                    {"required": ["sources"], "properties": {"sources": {"type": "array", "minItems": 1}}},
                ],
            }
        },
    }
    return {
        **object_schema(properties, ["kind"]),
        "allOf": [
            # with arms, the steps are derived from them (a definition read back carries them)
            {
                "anyOf": [
                    {"required": ["steps"], "properties": {"arms": {"type": "null"}}},
                    {
                        "required": ["arms"],
                        "properties": {"arms": {"type": "array"}},
                        "not": {"required": ["steps"]},
                    },
                ]
            },
            {"if": {"properties": {"kind": {"const": "nurture"}}}, "then": nurture_audience},
        ],
        "description": "an SOP definition (docs/sops.md): a nurture SOP needs a target rule or sources",
    }


def definition_components(
    actions: Mapping[str, Mapping[str, Any] | None],
    core: Iterable[str],
    channels: Mapping[str, ChannelSteps],
) -> dict[str, dict[str, Any]]:
    """The components of an SOP definition (they refer to the rule language's
    ``Rule`` and ``RuleDuration``): ``SopDefinition`` is the whole definition."""
    return {
        "SopDefinition": definition_schema(),
        "SopStep": step_schema(),
        "SopAction": action_schema(actions, tuple(core), channels),
    }
