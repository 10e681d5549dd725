"""The journey and keyword-rule bodies the OpenAPI document states
(engine/journeys/schema.py, engine/keywords/schema.py) agree with their parsers.

Bodies are drawn from the app's own document with the generator schemathesis
fuzzes the API with, and the parser (``check_journey``; msgspec's Struct then
``validate_rule``) accepts each one; bodies one change away from a drawn one that
the parser still takes, the schema allows too.  What the schemas say needs the
tenant's rows is given as the tenant's rows would be: a nurture SOP for
``entry_sop_id``, the edited journey's stages for a stage ``id`` and its pipeline
for a stage condition, a fitting field for every field a rule or a ``set_field``
names, a segment expanded.  Only the problems the schemas name as unstated may
remain: stage names repeated or not this journey's, the current stage or churn
status twice in one rule, a template that does not compile or render within
bounds, a rule's comparisons of two values, and on an edit the switches already
saved deciding that a reminder channel is needed."""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import jsonschema_rs
import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from schemathesis.generation.jsonschema.builder import build
from sopflow.api.keyword_rules import KeywordRuleCreate, KeywordRuleUpdate
from sopflow.conditions.parse import MAX_ID, whole_number
from sopflow.engine.customers.fields import FieldDef, to_storage
from sopflow.engine.journeys import definition
from sopflow.engine.journeys.definition import check_journey, with_template
from sopflow.engine.keywords.rules import validate_rule
from sopflow.errors import InvalidInput
from sopflow.models import Journey
from sopflow_sdk import FIELD_TYPES

from tests.schema_support import RULE_UNSTATED, SETTINGS, mutant, strings, with_rows
from tests.sop_support import create_sop

#: what the journey schema names as unstated (see the module docstring), by message
UNSTATED = (
    "names are unique",
    "has no stage",
    "use it at most once",
    "template error on line",
    "keep a message's template to what one message needs",
    *RULE_UNSTATED,
)
#: on an edit, the journey's saved switches decide whether a reminder channel is needed
EDIT_UNSTATED = (*UNSTATED, "give the channel that notifies staff")
NURTURE = {
    "kind": "nurture",
    "target": {"sources": ["form"]},
    "steps": [{"day": 1, "at": "09:00", "actions": [{"type": "send", "text": "Hi"}]}],
}


class Rows(NamedTuple):
    """The tenant's rows the drawn bodies are given, and the app's document."""

    app: Any
    tenant_id: int
    schemas: dict[str, Any]
    nurture_id: int
    journey_id: int
    pipeline_id: int
    stage_ids: list[int]
    fields: dict[str, Any]


@pytest.fixture
def rows(sopflow_app, api, test_client, monkeypatch) -> Rows:
    schemas = test_client.get("/schema/openapi.json").json()["components"]["schemas"]
    nurture_id = create_sop(api, "nurture", NURTURE, start=False)
    made = api.post("/api/v1/journeys", json={"name": "edited", "stages": [{"name": "a"}, {"name": "b"}]})
    assert made.status_code == 201, made.text
    fields: dict[str, Any] = {}
    # the fields a drawn rule names are the ones with_rows gives it
    monkeypatch.setattr(definition, "field_definitions", lambda *args: fields)
    body = made.json()
    return Rows(
        sopflow_app,
        api.tenant_id,
        schemas,
        nurture_id,
        body["id"],
        body["pipeline_id"],
        [s["id"] for s in body["stages"]],
        fields,
    )


def _document(rows: Rows, name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}", "components": {"schemas": rows.schemas}}


def _an_id(value: Any) -> bool:
    return whole_number(value) is not None and 1 <= value <= MAX_ID


def _own_pipeline(rule: Any, pipeline_id: int) -> Any:
    """Every stage condition's pipeline the journey's own."""
    if isinstance(rule, list):
        return [_own_pipeline(r, pipeline_id) for r in rule]
    if not isinstance(rule, dict):
        return rule
    out = {k: _own_pipeline(v, pipeline_id) for k, v in rule.items()}
    stage = out.get("stage")
    if isinstance(stage, dict) and _an_id(stage.get("pipeline_id")):
        out["stage"] = {**stage, "pipeline_id": pipeline_id}
    return out


def _with_journey_rows(body: dict[str, Any], rows: Rows, edit: bool) -> dict[str, Any] | None:
    out = copy.deepcopy(body)
    stages = out.get("stages")
    for i, stage in enumerate(stages if isinstance(stages, list) else []):
        if not isinstance(stage, dict):
            continue
        if _an_id(stage.get("entry_sop_id")):
            stage["entry_sop_id"] = rows.nurture_id
        if edit and _an_id(stage.get("id")):
            stage["id"] = rows.stage_ids[i % len(rows.stage_ids)]
        rules = stage.get("rules")
        for rule in rules if isinstance(rules, list) else []:
            conditions = rule.get("conditions") if isinstance(rule, dict) else None
            if isinstance(conditions, list):
                rule["conditions"] = with_rows(_own_pipeline(conditions, rows.pipeline_id), rows.fields)
                if rule["conditions"] is None:
                    return None
    return out


def journey_problems(rows: Rows, body: Any, *, edit: bool) -> list[tuple[str, str]]:
    """What ``check_journey`` refuses in ``body`` (a new journey's, or an edit of
    the fixture's journey), but for what the schema names as unstated."""
    rows.fields.clear()
    prepared = _with_journey_rows(body, rows, edit) if isinstance(body, dict) else body
    if prepared is None:
        return [("rules", "no field type fits")]
    problems: list[tuple[str, str]] = []
    with rows.app.read() as session:
        current = session.get(Journey, rows.journey_id) if edit else None
        try:
            raw = prepared if edit else with_template(rows.app, prepared)
            if not edit and (not isinstance(raw, dict) or raw.get("name") is None):
                problems.append(("name", "a new journey needs a name"))  # create_journey's check
            check_journey(
                session, rows.app, rows.tenant_id, raw, pipeline_id=rows.pipeline_id, current=current
            )
        except InvalidInput as exc:
            problems += [(e["field"], e["message"]) for e in exc.errors]
    unstated = EDIT_UNSTATED if edit else UNSTATED
    return [p for p in problems if not any(u in p[1] for u in unstated)]


def _fitting_field(key: str, value: Any) -> FieldDef | None:
    for ftype in FIELD_TYPES:
        defn = FieldDef(key, ftype, choices=strings(value))
        try:
            stored = to_storage(defn, value)
        except ValueError:
            continue
        if not any("\x00" in v for v in strings(stored)):
            return defn
    return None


def keyword_problems(body: Any, *, edit: bool) -> list[tuple[str, str]]:
    """What the API's Struct, then ``validate_rule``, refuses in ``body``, every
    ``set_field`` given a field whose type takes its value."""
    try:
        data = msgspec.convert(body, KeywordRuleUpdate if edit else KeywordRuleCreate)
    except msgspec.ValidationError as exc:
        return [("body", str(exc))]
    raw = {k: v for k, v in msgspec.to_builtins(data).items() if not (edit and v is None)}
    fields: dict[str, FieldDef] = {}
    for action in raw.get("actions") or []:
        if isinstance(action, dict) and action.get("field") and isinstance(action["field"], str):
            action["field"] = key = f"f{len(fields)}"  # each action its own field: one type each
            found = _fitting_field(key, action["value"]) if "value" in action else FieldDef(key, "text")
            if found is not None:
                fields[key] = found
    try:
        validate_rule(raw, fields, partial=edit)
    except InvalidInput as exc:
        return [(e["field"], e["message"]) for e in exc.errors]
    return []


#: a keyword rule is checked without the database: the SQLite pass alone runs those
SQLITE_PASS = pytest.mark.sqlite_pass
BODIES = [
    pytest.param("JourneyCreate", False, journey_problems, id="JourneyCreate"),
    pytest.param("JourneyUpdate", True, journey_problems, id="JourneyUpdate"),
    pytest.param(
        "KeywordRuleCreate", False, keyword_problems, id="KeywordRuleCreate", marks=pytest.mark.sqlite_pass
    ),
    pytest.param(
        "KeywordRuleUpdate", True, keyword_problems, id="KeywordRuleUpdate", marks=pytest.mark.sqlite_pass
    ),
]


def _problems(rows: Rows, check: Any, body: Any, edit: bool) -> list[tuple[str, str]]:
    return check(rows, body, edit=edit) if check is journey_problems else check(body, edit=edit)


@pytest.mark.parametrize(("component", "edit", "check"), BODIES)
def test_every_body_the_schema_allows_the_parser_accepts(rows, component, edit, check):
    @SETTINGS
    @given(build(_document(rows, component), draft=jsonschema_rs.Draft202012, formats={}))
    def drawn(body):
        assert _problems(rows, check, body, edit) == [], body

    drawn()


@pytest.mark.parametrize(("component", "edit", "check"), BODIES)
def test_every_body_the_parser_accepts_the_schema_allows(rows, component, edit, check):
    """The schema is no stricter than the parser, one change away from a valid body."""
    document = _document(rows, component)
    validator = jsonschema_rs.Draft202012Validator(document)

    # a keyword rule is checked without the database: more examples cost little
    @settings(SETTINGS, max_examples=60 if check is journey_problems else 300)
    @given(build(document, draft=jsonschema_rs.Draft202012, formats={}), st.data())
    def changed(body, data):
        other = mutant(data, body)
        assume(isinstance(other, dict))
        if not _problems(rows, check, other, edit):
            assert validator.is_valid(other), other

    changed()


REMINDER = {"day": 1, "at": "09:00", "text": "Hi {{ customer.display_name }}", "attachments": None}
JOURNEY = {
    "name": "dental",
    "reminder_channel": "log",
    "stages": [
        {"name": "咨询", "rules": [{"conditions": [{"tags": {"any_of": ["咨询"]}}]}]},
        {
            "name": "extraction",
            "rules": [{"conditions": [{"stage": {"in": ["咨询"]}}, {"churned": False}]}],
            "reminders": [REMINDER],
            "entry_sop_id": 7,
        },
    ],
}


@pytest.mark.parametrize(
    ("component", "edit", "body"),
    [
        ("JourneyCreate", False, JOURNEY),
        ("JourneyUpdate", True, {"automation": False, "stages": [{"id": 1, "name": "a"}]}),
        (
            "KeywordRuleCreate",
            False,
            {
                "name": " 询价 ",
                "keywords": [" 多少钱", "价格"],
                "actions": [
                    {"type": "add_tag", "tag": "询价 "},
                    {"type": "set_field", "field": "budget", "value": None},
                ],
            },
        ),
        ("KeywordRuleUpdate", True, {"case_sensitive": True, "keywords": None}),
    ],
)
def test_documented_bodies_are_allowed(rows, component, edit, body):
    check = journey_problems if component.startswith("Journey") else keyword_problems
    assert jsonschema_rs.Draft202012Validator(_document(rows, component)).is_valid(body)
    assert _problems(rows, check, body, edit) == []


@pytest.mark.parametrize(
    ("component", "edit", "body"),
    [
        ("JourneyCreate", False, {**JOURNEY, "reminder_channel": None}),  # reminders need a channel
        ("JourneyCreate", False, {**JOURNEY, "follow_up_reminders": True, "reminder_channel": None}),
        ("JourneyCreate", False, {"name": "x", "stages": []}),
        ("JourneyCreate", False, {"name": "x", "stages": [{"name": "a", "id": 3}]}),  # new: no id
        ("JourneyCreate", False, {"stages": [{"name": "a"}]}),  # no name, no template
        ("JourneyUpdate", True, {"stages": [{"name": "a", "rules": [{"conditions": []}]}]}),
        ("JourneyUpdate", True, {"stages": [{"name": "a", "reminders": [{**REMINDER, "day": -1}]}]}),
        ("JourneyUpdate", True, {"stages": [{"name": "a", "entry_sop_id": True}]}),
        (
            "KeywordRuleCreate",
            False,
            {"name": "x", "keywords": ["  "], "actions": [{"type": "add_tag", "tag": "t"}]},
        ),
        (
            "KeywordRuleCreate",
            False,
            {"name": "x", "keywords": ["k"], "actions": [{"type": "add_tag", "tag": "t" * 101}]},
        ),
        ("KeywordRuleUpdate", True, {"actions": [{"type": "set_field", "field": "f"}]}),  # no value
        ("KeywordRuleUpdate", True, {"actions": [{"type": "untag", "tag": "t"}]}),
    ],
)
def test_shapes_the_parser_refuses_the_schema_refuses(rows, component, edit, body):
    check = journey_problems if component.startswith("Journey") else keyword_problems
    assert not jsonschema_rs.Draft202012Validator(_document(rows, component)).is_valid(body)
    assert _problems(rows, check, body, edit)


def test_the_operations_and_responses_refer_to_the_components(test_client):
    document = test_client.get("/schema/openapi.json").json()
    paths, schemas = document["paths"], document["components"]["schemas"]

    def body(path: str, method: str) -> dict[str, Any]:
        return paths[path][method]["requestBody"]["content"]["application/json"]["schema"]

    assert body("/api/v1/journeys", "post") == {"$ref": "#/components/schemas/JourneyCreate"}
    assert body("/api/v1/journeys/{journey_id}", "patch") == {"$ref": "#/components/schemas/JourneyUpdate"}
    stage = schemas["JourneyStageOut"]["properties"]
    assert stage["rules"]["items"] == {"$ref": "#/components/schemas/JourneyStageRuleOut"}
    assert stage["reminders"]["items"] == {"$ref": "#/components/schemas/JourneyReminderOut"}
    action = "#/components/schemas/KeywordAction"
    assert schemas["KeywordRuleOut"]["properties"]["actions"]["items"]["$ref"] == action
    assert schemas["MatchedRule"]["properties"]["actions"]["items"]["$ref"] == action
    assert schemas["KeywordRuleCreate"]["properties"]["keywords"] == {
        "$ref": "#/components/schemas/KeywordList"
    }


@pytest.mark.parametrize("bad", [[1], {"id": 1}, True, "1", 2**40])
def test_ids_that_name_no_row_are_refused_not_looked_up(api, bad):
    """A stage id or an entry SOP id that is no id is a 422 naming it (it was
    a server error: a list is no dict key, a text or a bool is no id on Postgres)."""
    made = api.post("/api/v1/journeys", json={"name": "j", "stages": [{"name": "a"}]})
    assert made.status_code == 201, made.text
    stage = {"name": "a", "id": bad, "entry_sop_id": bad}
    r = api.patch(f"/api/v1/journeys/{made.json()['id']}", json={"stages": [stage]})
    assert r.status_code == 422, r.text
    assert {e["field"] for e in r.json()["errors"]} == {"stages[0].id", "stages[0].entry_sop_id"}


@pytest.mark.parametrize("bad", [{}, [1], 3, "nope"])
def test_a_template_that_is_no_key_is_refused(api, bad):
    """It was a server error for a value that is no dict key (an object, a list)."""
    r = api.post("/api/v1/journeys", json={"name": "j", "stages": [{"name": "a"}], "template": bad})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["template"]


def test_a_template_may_stand_for_the_name_and_the_stages():
    """With a pipeline template installed, a new journey may name only it
    (``with_template`` fills an empty or missing name and stages)."""
    from sopflow.conditions.schema import rule_components
    from sopflow.engine.journeys.schema import journey_components

    schemas = {**rule_components(), **journey_components(["log"], ["dental"], 10)}
    valid = jsonschema_rs.Draft202012Validator(
        {"$ref": "#/components/schemas/JourneyCreate", "components": {"schemas": schemas}}
    ).is_valid
    assert valid({"template": "dental"}) and valid({"template": "dental", "name": "", "stages": []})
    assert valid({"template": None, "name": "j", "stages": [{"name": "a"}]})
    assert not valid({"template": "other"}) and not valid({"template": "dental", "name": " "})


def test_whole_numbers_may_be_spelled_as_json_schema_integers(api):
    """``2.0`` is an integer to JSON Schema (and to the generator): a reminder's
    day so spelled is taken, and shown as ``2``."""
    reminder = {"day": 2.0, "at": "09:00", "text": "Hi"}
    body = {"name": "j", "reminder_channel": "log", "stages": [{"name": "a", "reminders": [reminder]}]}
    r = api.post("/api/v1/journeys", json=body)
    assert r.status_code == 201, r.text
    day = r.json()["stages"][0]["reminders"][0]["day"]
    assert day == 2 and isinstance(day, int)
