"""An SOP definition's JSON Schema (engine/sops/schema.py) agrees with its parser.

Definitions are drawn from the schema with the generator schemathesis fuzzes the
API with, for the installed actions and channels, and ``validate_definition``
accepts each one; definitions one change away from a drawn one that the parser
still takes, the schema allows too.  What the schema says it cannot know is given
to the parser as the tenant's rows would: every field a rule or a ``set_field``
names exists with a type that fits, every stage and flow target exists, a segment
reference is expanded.  Only the problems the schema names as unstated may remain:
a template that does not compile or render within bounds, the welcome touchpoint
outside a new_customer SOP's first immediate step, two arms of one name, more
than the most steps over all arms, and a rule's comparisons of two values."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from schemathesis.generation.jsonschema.builder import build
from sopflow.conditions.schema import rule_components
from sopflow.engine.sops.definition import MAX_STEPS, WELCOME_RULE, validate_definition
from sopflow.engine.sops.schema import ChannelSteps, definition_components
from sopflow.engine.sops.step_actions import CoreActionSpec
from sopflow.plugins import build_plugin_system
from sopflow_sdk import ConfigError

from tests.schema_support import RULE_UNSTATED, SETTINGS, Field, mutant, with_rows

pytestmark = pytest.mark.sqlite_pass  # schema against parser: no database

PLUGINS = build_plugin_system()
ACTIONS = {r.spec.name: r.spec for r in PLUGINS.registry.all("register_actions")}
CHANNELS = {r.spec.name: r.spec for r in PLUGINS.registry.all("register_channels")}
COMPONENTS = {
    **rule_components(),
    **definition_components(
        {name: spec.params_schema for name, spec in ACTIONS.items()},
        {name for name, spec in ACTIONS.items() if isinstance(spec, CoreActionSpec)},
        {
            name: ChannelSteps(
                frozenset(spec.capabilities.touchpoints),
                spec.capabilities.max_attachments,
                spec.step_params.json_schema() if spec.step_params.settings else None,
            )
            for name, spec in CHANNELS.items()
        },
    ),
}
DOCUMENT = {"$ref": "#/components/schemas/SopDefinition", "components": {"schemas": COMPONENTS}}
VALIDATOR = jsonschema_rs.Draft202012Validator(DOCUMENT)
DEFINITIONS = build(DOCUMENT, draft=jsonschema_rs.Draft202012, formats={})
#: what the schema names as unstated (see the module docstring), by message
UNSTATED = (
    "template error on line",
    "keep a message's template to what one message needs",
    WELCOME_RULE,
    "is used by another arm",
    f"at most {MAX_STEPS} steps over all arms",
    *RULE_UNSTATED,
)


RULE_PLACES = (("target", "rule"), ("early_end",), ("goal", "rule"))


def _prepared(definition: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any] | None:
    out = copy.deepcopy(definition)
    for place in RULE_PLACES:
        parent = out
        for key in place[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and isinstance(parent.get(place[-1]), dict):
            rule = with_rows(parent[place[-1]], fields)
            if rule is None:
                return None
            parent[place[-1]] = rule
    arms = out.get("arms") if isinstance(out.get("arms"), list) else []  # a mutant may make any value
    for steps in [out.get("steps")] + [a.get("steps") for a in arms if isinstance(a, dict)]:
        for step in steps if isinstance(steps, list) else []:
            actions = step.get("actions") if isinstance(step, dict) else None
            for action in actions if isinstance(actions, list) else []:
                if isinstance(action, dict) and isinstance(action.get("field"), str):
                    fields[action["field"]] = Field("text", ())
    return out


def _problems(definition: Any) -> list[tuple[str, str]]:
    fields: dict[str, Any] = {}
    prepared = _prepared(definition, fields) if isinstance(definition, dict) else definition
    if prepared is None:
        return [("rule", "no field type fits")]
    try:
        validate_definition(
            prepared,
            fields=fields,
            channel_exists=CHANNELS.__contains__,
            stage_exists=lambda stage_id: True,
            sop_is_nurture=lambda sop_id: True,
            actions=ACTIONS,
            channel_spec=CHANNELS.get,
        )
    except ConfigError as exc:
        return [p for p in exc.problems if not any(u in p[1] for u in UNSTATED)]
    return []


@SETTINGS
@given(DEFINITIONS)
def test_every_definition_the_schema_allows_the_parser_accepts(definition):
    assert _problems(definition) == [], definition


@SETTINGS
@given(DEFINITIONS, st.data())
def test_every_definition_the_parser_accepts_the_schema_allows(definition, data):
    """The schema is no stricter than the parser, one change away from a valid definition."""
    changed = mutant(data, definition)
    assume(isinstance(changed, dict))
    if not _problems(changed):
        assert VALIDATOR.is_valid(changed), changed


STEP = {"day": 1, "at": "09:00", "actions": [{"type": "send", "text": "Hi {{ customer.display_name }}"}]}


@pytest.mark.parametrize(
    "definition",
    [
        {"kind": "nurture", "target": {"rule": {"tags": {"any_of": ["vip"]}}}, "steps": [STEP]},
        {
            "kind": "new_customer",
            "steps": [{"delay": "0m", "actions": [{"type": "send", "touchpoint": "welcome", "text": "Hi"}]}],
            "quiet_hours": {"start": "22:00", "end": "08:00"},
            "batch": {"size": 100, "interval": "10m"},
            "on_complete": {"tags_add": ["done"], "flow_to": 7},
            "goal": {"event_type": "order.paid"},
        },
        {
            "kind": "nurture",
            "target": {"sources": ["form"]},
            "arms": [
                {"name": "a", "weight": 50, "steps": [STEP]},
                {"name": "b", "weight": 50, "steps": [STEP]},
            ],
        },
    ],
)
def test_documented_definitions_are_allowed(definition):
    assert VALIDATOR.is_valid(definition) and _problems(definition) == []


@pytest.mark.parametrize(
    "definition",
    [
        {"kind": "nurture", "steps": [STEP]},  # no audience
        {"kind": "new_customer", "steps": [{**STEP, "delay": "1d"}]},  # delay and day
        {"kind": "new_customer", "steps": [STEP], "batch": {"size": 0, "interval": "1h"}},
        {"kind": "new_customer", "steps": [STEP], "target": False},
        {"kind": "new_customer", "steps": [STEP], "goal": {"event_type": "x", "extra": 1}},
        {"kind": "new_customer", "steps": [{**STEP, "actions": [{"type": "add_tag", "tag": " ", "x": 1}]}]},
        {"kind": "new_customer", "steps": [{**STEP, "wait_for_reply": {"timeout": "1d", "later": True}}]},
    ],
)
def test_shapes_the_parser_refuses_the_schema_refuses(definition):
    assert not VALIDATOR.is_valid(definition) and _problems(definition)
