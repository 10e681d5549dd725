"""Property-based API fuzzing from our own OpenAPI schema, with every check
schemathesis has: no 5xx, every status and content type documented, responses
and headers matching their schemas, authentication enforced, missing headers
refused, ``Allow`` telling the truth, resources gone after a delete, and the
two data checks: a request the schema allows is accepted, one it forbids is
refused.  Examples are derandomized so every run tries the same inputs: 12 per
operation on Postgres, where storage-specific failures show (its types, NUL,
integer ranges), and the first 6 of them on SQLite, the pass beside it, to keep
the two passes' time in bounds."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

#: The test tenant's admin key, set by the schema fixture (the tenant is per test).
KEY: dict[str, Any] = {}
#: Every admin key the test minted: a case generated before a revoke still carries an old one.
ISSUED: set[str] = set()


@schemathesis.auth(refresh_interval=None)  # not cached: the key changes when the fuzz revokes it
class TenantKey:
    """The auth schemathesis uses (and knows it uses): the checks that probe
    missing or invalid credentials then see our real key's effect."""

    def get(self, case: Any, ctx: Any) -> str:
        return KEY["admin"]

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def api_schema(sopflow_app, api):
    from sopflow.api.app import build_api

    KEY.update(admin=api.key, app=sopflow_app, tenant_id=api.tenant_id)
    ISSUED.add(api.key)
    return schemathesis.openapi.from_asgi("/schema/openapi.json", build_api(sopflow_app))


def _current_key(case: Any) -> None:
    """Our own key, revoked by an earlier ``DELETE /api-keys/{id}``, is swapped
    for the live one (a probe of a missing or foreign key is left as it is)."""
    sent = (case.headers or {}).get("Authorization", "")
    if sent.removeprefix("Bearer ") in ISSUED - {KEY["admin"]}:
        case.headers["Authorization"] = f"Bearer {KEY['admin']}"


def _remint_after_revoke(case: Any, status: int) -> None:
    """The fuzz revokes key 1 (ours) early on; every later operation would only
    see 401s and the fuzz would never reach a handler again."""
    if case.method == "DELETE" and case.path == "/api/v1/api-keys/{key_id}" and status == 204:
        from sopflow.engine.customers.tenants import issue_api_key

        app = KEY["app"]
        with app.tx() as s:
            KEY["admin"] = issue_api_key(s, KEY["tenant_id"], ["admin"], app.now())[1]
        ISSUED.add(KEY["admin"])


#: Where a rule's problem depends on the tenant's rows, under a body's ``rule``.
RULE_ROWS = re.compile(r"rule(\.(all|any)\[\d+\]|\.not)*\.(field|op|value(\[\d+\])?|segment)")

#: 422s a schema cannot foresee, each because the check needs the tenant's rows
#: (which JSON Schema cannot see): a field key the tenant has not defined, a
#: customer id that names no customer, an identity another customer holds, a
#: channel account of a disabled plugin.  Matched by the field the 422 names,
#: per operation, so every other 422 still fails the test.
ROW_CHECKS: dict[str, re.Pattern[str]] = {
    "POST /api/v1/customers": re.compile(r"fields\..*|identities\[\d+\]", re.S),
    "PATCH /api/v1/customers/{customer_id}": re.compile(r"fields\..*|identities\[\d+\]", re.S),
    "POST /api/v1/events": re.compile(r"events\[\d+\]\.(customer_id|fields\..*|identity)", re.S),
    "POST /api/v1/channel-accounts": re.compile(r"channel"),
    # a stage name unique in its pipeline: JSON Schema's uniqueItems compares whole items
    "POST /api/v1/pipelines": re.compile(r"stages\[\d+\]\.name"),
    "POST /api/v1/pipelines/{pipeline_id}/stages": re.compile(r"name"),
    "PATCH /api/v1/stages/{stage_id}": re.compile(r"name"),
    # the SOP to compare with is another one than the path's
    "GET /api/v1/sops/{sop_id}/compare": re.compile(r"other"),
    # a rule's field conditions name the tenant's fields (whose type sets the ops and
    # values that apply), and a segment reference a saved segment
    "POST /api/v1/segments": RULE_ROWS,
    "POST /api/v1/segments/preview": RULE_ROWS,
}
#: An SOP definition's parts that name the tenant's rows: a rule's fields and
#: segments, a step's channel (enabled for the tenant), set_field's field, a stage,
#: a plugin action (enabled for the tenant) and a flow target (a nurture SOP).
SOP_ROWS = re.compile(
    r"definition\.(((target|goal)\.rule|early_end)(\.(all|any)\[\d+\]|\.not)*\.(field|op|value(\[\d+\])?|segment)"
    r"|(arms\[\d+\]\.)?steps\[\d+\]\.actions\[\d+\]\.(channel|field|stage_id|type|action)"
    r"|(on_early_end|on_complete)\.flow_to)"
)
for _label in ("POST /api/v1/sops", "PATCH /api/v1/sops/{sop_id}", "POST /api/v1/sops/{sop_id}/forecast"):
    ROW_CHECKS[_label] = SOP_ROWS
#: What JSON Schema cannot compare: one value of a rule against another (an events
#: condition's min above its max, a between's low above its high), and the count of a
#: rule's nodes and levels (stated in its description); in an SOP definition also
#: whether a template compiles and renders within bounds, two arms of one name, the
#: steps over all arms, and the welcome touchpoint outside a new_customer SOP's first
#: immediate step (each named in the schema's descriptions).  Matched by the field
#: and the message, per operation.
_RULE_BOUNDS = (
    r"min \d+ is above max \d+.*|low .* is above high .*|\d+ nodes; a rule may hold.*|nesting is deeper .*"
)
_SEGMENT_UNSTATED = (
    re.compile(r"rule(\.(all|any)\[\d+\]|\.not)*(\.events|\.value)?"),
    re.compile(_RULE_BOUNDS),
)
_SOP_UNSTATED = (
    re.compile(r"definition\..*", re.S),
    re.compile(
        _RULE_BOUNDS + r"|template error on line .*|.*; keep a message's template to what one message needs"
        r"|a welcome message goes out only as .*|'.*' is used by another arm.*"
        r"|at most \d+ steps over all arms",
        re.S,
    ),
)
UNSTATED = {
    "POST /api/v1/segments": _SEGMENT_UNSTATED,
    "POST /api/v1/segments/preview": _SEGMENT_UNSTATED,
    "POST /api/v1/sops": _SOP_UNSTATED,
    "PATCH /api/v1/sops/{sop_id}": _SOP_UNSTATED,
    "POST /api/v1/sops/{sop_id}/forecast": _SOP_UNSTATED,
}
#: A journey's stage rules: what JSON Schema cannot compare (stage names unique, a
#: stage condition naming the journey's own stages, the current stage or churn
#: status twice in a rule), a reminder's template, and the rule language's bounds.
_JOURNEY_UNSTATED = (
    re.compile(r"stages\[\d+\]\.(name|rules\[\d+\]\.conditions\[\d+\].*|reminders\[\d+\]\.text)", re.S),
    re.compile(
        _RULE_BOUNDS + r"|stage '.*' appears twice; names are unique|pipeline \d+ has no stage .*"
        r"|the (current stage|churn status) appears twice in this rule .*"
        r"|template error on line .*|.*; keep a message's template to what one message needs",
        re.S,
    ),
)
UNSTATED["POST /api/v1/journeys"] = UNSTATED["PATCH /api/v1/journeys/{journey_id}"] = _JOURNEY_UNSTATED
#: A journey's parts that name the tenant's rows: a stage rule's fields and segments
#: and its pipeline (the journey's own), an entry SOP (a nurture SOP of the tenant);
#: on an edit also a stage id (one of the journey's stages) and the reminder channel
#: (needed or not by the switches already saved).
_JOURNEY_ROWS = (
    r"stages\[\d+\]\.(entry_sop_id|rules\[\d+\]\.conditions\[\d+\](\.(all|any)\[\d+\]|\.not)*"
    r"\.(field|op|value(\[\d+\])?|segment|stage\.pipeline_id))"
)
ROW_CHECKS["POST /api/v1/journeys"] = re.compile(_JOURNEY_ROWS)
ROW_CHECKS["PATCH /api/v1/journeys/{journey_id}"] = re.compile(
    _JOURNEY_ROWS + r"|stages\[\d+\]\.id|reminder_channel"
)
#: A keyword rule's set_field names one of the tenant's fields, and its value is one
#: of that field's type.
for _label in ("POST /api/v1/keyword-rules", "PATCH /api/v1/keyword-rules/{rule_id}"):
    ROW_CHECKS[_label] = re.compile(r"actions\[\d+\]\.(field|value)")


def _allowed(label: str, error: dict[str, Any]) -> bool:
    field = error.get("field", "")
    unstated = UNSTATED.get(label)
    if unstated and unstated[0].fullmatch(field) and unstated[1].fullmatch(error.get("message", "")):
        return True
    known = ROW_CHECKS.get(label)
    return known is not None and known.fullmatch(field) is not None


def _foreseeable(case: Any, response: Any) -> bool:
    """False when every problem of a 422 is one the schema cannot state."""
    label = case.operation.label
    if response.status_code != 422 or not (label in ROW_CHECKS or label in UNSTATED):
        return True
    errors = response.json().get("errors") or []
    return not errors or not all(_allowed(label, e) for e in errors)


schema = schemathesis.pytest.from_fixture("api_schema")
EXAMPLES = 12 if os.environ.get("SOPFLOW_TEST_BACKEND") == "postgres" else 6
STATUSES: set[int] = set()
#: The operations that answered a 2xx at least once.
SUCCEEDED: set[str] = set()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_contract(case):
    _current_key(case)
    response = case.call()
    _remint_after_revoke(case, response.status_code)
    STATUSES.add(response.status_code)
    if 200 <= response.status_code < 300:
        SUCCEEDED.add(case.operation.label)
    excluded = [] if _foreseeable(case, response) else [checks.positive_data_acceptance]
    case.validate_response(response, excluded_checks=excluded)


def test_fuzzing_reached_the_handlers():
    """Runs after the fuzz test (file order): authenticated calls got past auth
    (and, with the key re-minted after a revoke, past it on every operation)."""
    assert STATUSES & {200, 201, 204}, STATUSES
    # 55 of the 76 answer a 2xx today; with the key revoked for good (before the
    # re-mint) only the 8 operations fuzzed before DELETE /api-keys/{id} did.
    assert len(SUCCEEDED) >= 45, sorted(SUCCEEDED)
