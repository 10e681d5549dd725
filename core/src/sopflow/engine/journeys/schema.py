"""A journey's body as JSON Schema, built from the parser's own constants.

:func:`sopflow.engine.journeys.definition.check_journey` stays the one that
decides (every problem at once, with its path and fix); this states the same
shape for the OpenAPI document, as ``sopflow.engine.sops.schema`` does for an
SOP definition, and ``tests/test_journey_schema.py`` holds the two to agreeing.
A stage's rule conditions are the rule language's ``Rule`` (or a stage condition
without ``pipeline_id``: this journey's pipeline).

What depends on what is installed is passed in: the channels a journey may remind
staff on, the pipeline templates it may start from, and the most stages a journey
may have (``SOPFLOW_MAX_JOURNEY_STAGES``).  What a schema cannot state is left to
the parser and named in the descriptions: that stage names are unique and a stage
condition names this journey's own stages and pipeline, that a current stage or
churn status appears at most once per rule, whether a reminder's template
compiles and stays within its render bounds, and what needs the tenant's rows: a
stage id of the journey being edited, a nurture SOP, the fields and segments a
rule names, and (on an edit) the switches already saved, which decide whether a
``reminder_channel`` is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sopflow_sdk import ATTACHMENT_KINDS, MAX_ATTACHMENTS

from sopflow.conditions.parse import MAX_ID, MAX_LIST
from sopflow.conditions.schema import MAX_TEXT as MAX_NAME
from sopflow.conditions.schema import NO_NUL, NOT_BLANK, ref
from sopflow.engine.journeys.rules import MAX_CONDITIONS, MAX_REMINDERS, MAX_RULES
from sopflow.engine.sops.definition import HHMM, MAX_DAY, MAX_TEXT
from sopflow.engine.sops.schema import nullable, object_schema

NULL = {"type": "null"}
NAME = {
    "type": "string",
    "maxLength": 100,
    "pattern": NOT_BLANK,
    "description": "a non-empty name of at most 100 characters",
}
_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def condition_schema() -> dict[str, Any]:
    """One condition of a stage rule: a rule-language node, or this journey's stage."""
    names = {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_LIST,
        "items": {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": NO_NUL},
        "description": "names of this journey's stages",
    }
    own_stage = object_schema(
        {"stage": object_schema({"in": names}, ["in"])},
        ["stage"],
        description="the customer's current stage in this journey is one of these",
    )
    return {
        "anyOf": [ref("Rule"), own_stage],
        "description": "a rule-language condition; a stage condition without pipeline_id means this "
        "journey's pipeline (with one it must be this journey's), and names this journey's stages; "
        "the current stage and the churn status appear at most once per rule",
    }


def reminder_schema(*, stored: bool = False) -> dict[str, Any]:
    """A stage reminder, as posted (``stored``: as the journey shows it, every key given)."""
    attachment = {
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"type": "string", "enum": list(ATTACHMENT_KINDS)}},
    }
    attachments = {"type": "array", "maxItems": MAX_ATTACHMENTS, "items": attachment}
    properties = {
        "day": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_DAY,
            "description": "days after entering the stage (0: that day)",
        },
        "at": {"type": "string", "pattern": f"^{HHMM.pattern}$", "description": "a local time 'HH:MM'"},
        "text": {
            "type": "string",
            "maxLength": MAX_TEXT,
            "pattern": NO_NUL,
            "description": f"a message template of at most {MAX_TEXT} characters; its syntax and render "
            "bounds are checked when the journey is saved (see docs/sops.md)",
        },
        "attachments": attachments if stored else nullable(attachments),
    }
    required = list(properties) if stored else ["day", "at", "text"]
    return object_schema(properties, required, description="a reminder to the customer's owner")


def stage_schema(*, edit: bool) -> dict[str, Any]:
    """A stage as posted: a new journey's stages are all new (no ``id``)."""
    rule = {
        "type": "object",
        "required": ["conditions"],
        "properties": {
            "conditions": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_CONDITIONS,
                "items": ref("JourneyCondition"),
                "description": f"1 to {MAX_CONDITIONS} conditions, joined by AND",
            }
        },
    }
    stage_id = (
        nullable({**_ID, "description": "the id of one of this journey's stages; omit for a new one"})
        if edit
        else {**NULL, "description": "a new journey's stages are new: no id"}
    )
    properties = {
        "id": stage_id,
        "name": NAME,
        "rules": nullable(
            {
                "type": "array",
                "maxItems": MAX_RULES,
                "items": rule,
                "description": f"up to {MAX_RULES} entry rules, joined by OR",
            }
        ),
        "entry_sop_id": nullable({**_ID, "description": "the id of a nurture SOP of this tenant"}),
        "reminders": nullable({"type": "array", "maxItems": MAX_REMINDERS, "items": ref("JourneyReminder")}),
    }
    return object_schema(properties, ["name"], description="a stage; its name unique in the journey")


def _settings(channels: Sequence[str]) -> dict[str, Any]:
    switches = ("automation", "allow_backward", "stage_reminders", "follow_up_reminders")
    channel = {"type": "string", "enum": list(channels)} if channels else {"not": {}}
    return {
        **{key: {"type": "boolean"} for key in switches},
        "reminder_channel": {
            "anyOf": [channel, NULL],
            "description": "an installed channel that notifies staff; needed when follow-up reminders "
            "are on, or stage reminders are on and a stage has reminders",
        },
    }


def _stages(stage: str, most: int, least: int = 1) -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": least,
        "maxItems": most,
        "items": ref(stage),
        "description": f"{least} to {most} stages in order (SOPFLOW_MAX_JOURNEY_STAGES)",
    }


def _channel_needed() -> list[dict[str, Any]]:
    """A new journey's reminder channel, given when its reminders need one."""
    given = {"required": ["reminder_channel"], "properties": {"reminder_channel": {"type": "string"}}}
    with_reminders = {
        "type": "object",
        "required": ["reminders"],
        "properties": {"reminders": {"type": "array", "minItems": 1}},
    }
    return [
        {
            "if": {
                "required": ["follow_up_reminders"],
                "properties": {"follow_up_reminders": {"const": True}},
            },
            "then": given,
        },
        {
            "if": {
                "required": ["stages"],
                "properties": {
                    "stage_reminders": {"const": True},
                    "stages": {"type": "array", "contains": with_reminders},
                },
            },
            "then": given,
        },
    ]


def create_schema(channels: Sequence[str], templates: Sequence[str], most: int) -> dict[str, Any]:
    """``JourneyCreate``: a name and stages, or a plugin's pipeline template."""
    properties = {
        "name": NAME,
        "template": NULL,
        "stages": _stages("JourneyStageCreate", most),
        **_settings(channels),
    }
    cases = [object_schema(properties, ["name", "stages"])]
    if templates:
        templated = {
            **properties,
            "template": {"type": "string", "enum": list(templates)},
            "name": {"anyOf": [NAME, {"const": ""}, NULL], "description": "default: the template's"},
            "stages": {
                "anyOf": [_stages("JourneyStageCreate", most, 0), NULL],
                "description": "default (none or empty): the template's",
            },
        }
        cases.append(object_schema(templated, ["template"]))
    return {
        "type": "object",
        "oneOf": cases,
        "allOf": _channel_needed(),
        "description": "a new journey (docs/journeys.md): its name and stages, or a pipeline template",
    }


def update_schema(channels: Sequence[str], most: int) -> dict[str, Any]:
    """``JourneyUpdate``: only the keys given change; ``stages`` replaces them all."""
    properties = {
        "name": nullable(NAME),
        "template": {"description": "taken and ignored: a template only starts a journey"},
        "stages": nullable(_stages("JourneyStageUpdate", most)),
        **_settings(channels),
    }
    return object_schema(properties, description="changes to a journey; null or absent: unchanged")


def stored_rule_schema() -> dict[str, Any]:
    """A stage rule as the journey shows it: segments expanded, every stage
    condition carrying its pipeline."""
    return object_schema(
        {"conditions": {"type": "array", "minItems": 1, "maxItems": MAX_CONDITIONS, "items": ref("Rule")}},
        ["conditions"],
    )


def journey_components(channels: Sequence[str], templates: Sequence[str], most: int) -> dict[str, Any]:
    """The components of a journey's bodies (they refer to the rule language's ``Rule``)."""
    return {
        "JourneyCreate": create_schema(channels, templates, most),
        "JourneyUpdate": update_schema(channels, most),
        "JourneyStageCreate": stage_schema(edit=False),
        "JourneyStageUpdate": stage_schema(edit=True),
        "JourneyCondition": condition_schema(),
        "JourneyReminder": reminder_schema(),
        "JourneyStageRuleOut": stored_rule_schema(),
        "JourneyReminderOut": reminder_schema(stored=True),
    }
