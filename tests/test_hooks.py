"""The hooks that reach beyond registration: plugin pipeline templates
(register_pipelines), plugin SOP actions (register_actions) and the
on_stage_changed notification."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sopflow_sdk import ActionSpec, PipelineSpec, StageSpec, hookimpl

from tests.conftest import row_counts
from tests.sop_support import add_customer, create_sop, run_days

MOVES_SEEN: list[dict[str, Any]] = []
RUNS: list[tuple[dict[str, Any], dict[str, Any]]] = []


@hookimpl
def register_pipelines(register):
    register(
        PipelineSpec(key="education", name="Education", stages=(StageSpec("interest"), StageSpec("trial")))
    )


@hookimpl
def register_actions(register):
    register(ActionSpec(name="crm_task", run=lambda context, params: RUNS.append((context, params))))


@hookimpl
def on_stage_changed(tenant_id, customer_id, pipeline_id, from_stage, to_stage, cause):
    MOVES_SEEN.append({"customer_id": customer_id, "from": from_stage, "to": to_stage, "cause": cause})


@pytest.fixture
def sopflow_plugins():
    MOVES_SEEN.clear()
    RUNS.clear()
    plugin = SimpleNamespace(
        register_pipelines=register_pipelines,
        register_actions=register_actions,
        on_stage_changed=on_stage_changed,
    )
    return [("hooktest", plugin)]


def test_pipeline_template_and_stage_change_notification(api):
    r = api.post("/api/v1/pipelines", json={"template": "education"})
    assert r.status_code == 201, r.text
    pipeline = r.json()
    assert pipeline["name"] == "Education" and [s["name"] for s in pipeline["stages"]] == [
        "interest",
        "trial",
    ]
    customer = api.post("/api/v1/customers", json={"display_name": "A"}).json()["id"]
    for stage in pipeline["stages"]:
        assert (
            api.post(f"/api/v1/customers/{customer}/stage", json={"stage_id": stage["id"]}).status_code == 201
        )
    moves = list(MOVES_SEEN)
    assert moves == [
        {"customer_id": customer, "from": None, "to": "interest", "cause": "api"},
        {"customer_id": customer, "from": "interest", "to": "trial", "cause": "api"},
    ]


def test_unknown_template_is_a_422_that_changes_nothing(api, sopflow_app):
    before = row_counts(sopflow_app)
    r = api.post("/api/v1/pipelines", json={"template": "nope"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "template"
    assert "education" in r.json()["errors"][0]["message"]
    assert row_counts(sopflow_app) == before


def test_plugin_action_runs_in_an_sop_step(api, sopflow_app, manual_clock):
    step = {"delay": "1h", "actions": [{"type": "plugin", "action": "crm_task", "params": {"queue": "vip"}}]}
    create_sop(api, "crm", {"kind": "new_customer", "target": {}, "steps": [step]})
    customer = add_customer(api, "wm-crm")
    run_days(sopflow_app, manual_clock, 1)
    [(context, params)] = RUNS
    assert params == {"queue": "vip"} and context["customer_id"] == customer
    bad = {"delay": "1h", "actions": [{"type": "plugin", "action": "crm_tsk"}]}
    r = api.post(
        "/api/v1/sops",
        json={"name": "bad", "definition": {"kind": "new_customer", "target": {}, "steps": [bad]}},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "definition.steps[0].actions[0].action"
