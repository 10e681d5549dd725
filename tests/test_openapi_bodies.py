"""The OpenAPI's request bodies are msgspec's schema of the types that validate
them, so the constraints the server enforces are the ones the document states
(Litestar's own translation dropped list-item bounds, a minimum of 0 and
patterns); and the constraints moved into the types answer as before: a 422
naming the field and the fix."""

from __future__ import annotations

import msgspec


def _components(test_client):
    return test_client.get("/schema/openapi.json").json()["components"]["schemas"]


def test_body_components_are_msgspecs_own_schema(test_client):
    from sopflow.api.schemas import CustomerCreate, StageUpdate

    _, expected = msgspec.json.schema_components(
        [CustomerCreate, StageUpdate], ref_template="#/components/schemas/{name}"
    )
    schemas = _components(test_client)
    position = schemas["StageUpdate"]["properties"]["position"]["anyOf"][0]
    assert (
        position["minimum"] == 0 == expected["StageUpdate"]["properties"]["position"]["anyOf"][0]["minimum"]
    )
    tag = schemas["CustomerCreate"]["properties"]["tags"]["items"]
    assert tag["maxLength"] == 100 and "pattern" in tag, tag


def test_installed_choices_and_cross_field_rules_are_stated(test_client):
    schemas = _components(test_client)
    # the built-in channels
    assert schemas["ChannelAccountCreate"]["properties"]["channel"]["enum"] == ["log", "manual"]
    assert schemas["FieldCreate"]["properties"]["key"]["pattern"] == "^[a-z][a-z0-9_]{0,62}$"
    assert "text" in schemas["FieldCreate"]["properties"]["type"]["enum"]
    assert schemas["PipelineCreate"]["anyOf"] and schemas["EventIn"]["anyOf"]
    assert schemas["ClockAdvance"]["properties"]["days"]["maximum"] == 3000


def test_moved_checks_still_name_the_field_and_the_fix(api):
    bad = api.post("/api/v1/fields", json={"key": "Bad Key", "type": "text"})
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"] == [
        {"field": "key", "message": "use lower_snake_case, 1–63 characters, starting with a letter"}
    ]
    blank = api.post("/api/v1/segments", json={"name": "   ", "rule": {"tags": {"any": ["x"]}}})
    assert blank.status_code == 422, blank.text
    assert blank.json()["errors"][0]["field"] == "name"
    assert "empty or blank" in blank.json()["errors"][0]["message"]


def test_cursors_are_decimal_and_any_of_the_pattern_is_a_page(api):
    for name in ("a", "b", "c"):
        assert api.post("/api/v1/customers", json={"display_name": name}).status_code == 201
    first = api.get("/api/v1/customers?limit=2").json()
    assert first["next_cursor"].isdigit(), first
    rest = api.get(f"/api/v1/customers?limit=2&cursor={first['next_cursor']}").json()
    assert [c["display_name"] for c in rest["items"]] == ["c"]
    past = api.get("/api/v1/customers?cursor=9999999999")
    assert past.status_code == 200 and past.json() == {"items": [], "next_cursor": None}
    assert api.get("/api/v1/customers?cursor=MQ").status_code == 422


def test_inputs_the_fuzz_reached_on_postgres_are_not_500s(api):
    """Found once the fuzz got past auth on every route: a staff member named by
    a 128-character id (the name column holds 100), a touch status with a NUL."""
    staff = api.post("/api/v1/staff", json={"external_id": "0" * 128})
    assert staff.status_code == 201, staff.text
    owned = api.post("/api/v1/customers", json={"owner_staff_external_id": "1" * 128})
    assert owned.status_code == 201, owned.text
    touches = api.get("/api/v1/touches", params={"status": "sent\x00"})
    assert touches.status_code == 422 and touches.json()["errors"][0]["field"].endswith("status")


def test_rules_in_bodies_are_the_rule_language(test_client):
    """A segment's and a preview's rule are the rule language's component, not a free object."""
    schemas = _components(test_client)
    for body in ("SegmentCreate", "PreviewRequest"):
        assert schemas[body]["properties"]["rule"] == {"$ref": "#/components/schemas/Rule"}
    kinds = {tuple(s.get("required", ())) for s in schemas["Rule"]["anyOf"] if "required" in s}
    assert {("all",), ("any",), ("not",)} <= kinds
    refs = {s["$ref"].rsplit("/", 1)[1] for s in schemas["Rule"]["anyOf"] if "$ref" in s}
    assert refs == {
        "RuleField",
        "RuleTags",
        "RuleStage",
        "RuleChurned",
        "RuleSource",
        "RuleEvents",
        "RuleSegment",
    }


def test_a_rule_id_beyond_the_id_columns_is_a_422_naming_it(api):
    too_big = 2**31
    r = api.post("/api/v1/segments/preview", json={"rule": {"stage": {"pipeline_id": too_big, "in": ["a"]}}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "rule.stage.pipeline_id", r.text
    r = api.post("/api/v1/segments/preview", json={"rule": {"segment": too_big}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "rule.segment", r.text
    r = api.post("/api/v1/segments/preview", json={"rule": {"stage": {"pipeline_id": 1.0, "in": ["a"]}}})
    assert r.status_code == 200, r.text


def test_sop_definitions_are_stated_for_the_installed_actions_and_channels(test_client):
    """An SOP's definition is the SopDefinition component: every installed action by
    its type, and a send step once per channel with the touchpoints it declares."""
    schemas = _components(test_client)
    definition = {"$ref": "#/components/schemas/SopDefinition"}
    assert schemas["SopCreate"]["properties"]["definition"] == definition
    for body in ("SopUpdate", "SopForecastRequest"):
        assert schemas[body]["properties"]["definition"] == {"anyOf": [definition, {"type": "null"}]}
    types = {case["properties"]["type"]["const"] for case in schemas["SopAction"]["anyOf"]}
    assert {"send", "remind_staff", "set_field", "add_tag", "remove_tag", "move_stage", "webhook"} <= types
    sends = {
        case["properties"]["channel"]["const"]: case["properties"]["touchpoint"]["enum"]
        for case in schemas["SopAction"]["anyOf"]
        if case["properties"]["type"]["const"] == "send"
    }
    assert "private_chat" in sends["log"] and "log" in sends
    assert schemas["SopDefinition"]["properties"]["target"]["anyOf"][0]["properties"]["rule"] == {
        "anyOf": [{"$ref": "#/components/schemas/Rule"}, {"type": "null"}]
    }


def test_a_definition_with_a_falsy_object_or_an_unknown_nested_key_is_a_422(api):
    """What the schema refuses the parser refuses too, naming the place."""
    step = {"day": 1, "at": "09:00", "actions": [{"type": "add_tag", "tag": "vip", "colour": "red"}]}
    r = api.post(
        "/api/v1/sops",
        json={"name": "x", "definition": {"kind": "new_customer", "target": False, "steps": [step]}},
    )
    assert r.status_code == 422, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"definition.target", "definition.steps[0].actions[0].colour"}, r.json()


def test_a_goal_rule_may_name_a_saved_segment_as_every_rule_may(api):
    """The schema's goal rule is the rule language, segments included: the goal's
    segments are expanded on save like the target's and early_end's."""
    seg = api.post("/api/v1/segments", json={"name": "vips", "rule": {"tags": {"any_of": ["vip"]}}})
    assert seg.status_code == 201, seg.text
    step = {"day": 1, "at": "09:00", "actions": [{"type": "send", "text": "hi"}]}
    definition = {"kind": "new_customer", "steps": [step], "goal": {"rule": {"segment": seg.json()["id"]}}}
    r = api.post("/api/v1/sops", json={"name": "g", "definition": definition})
    assert r.status_code == 201, r.text
    assert r.json()["definition"]["goal"]["rule"] == {"tags": {"any_of": ["vip"]}}
    definition["goal"] = {"rule": {"segment": 999_999}}
    missing = api.post("/api/v1/sops", json={"name": "h", "definition": definition})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"].startswith("definition.goal.rule")
