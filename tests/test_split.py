"""Random splits: deterministic arm assignment, each arm's own steps, stats per
arm with Wilson intervals and a two-proportion test, and the same comparison
for two SOPs run for two staff groups."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from tests.sop_support import add_customer, create_sop, log_channel, run_days, send, tag

ARMS = [
    {"name": "short", "weight": 50, "steps": [{"delay": "1h", "actions": [send("short copy")]}]},
    {"name": "long", "weight": 30, "steps": [{"delay": "1h", "actions": [send("long copy")]}]},
    {
        "name": "two_step",
        "weight": 20,
        "steps": [
            {"delay": "1h", "actions": [send("first of two")]},
            {"delay": "1d", "actions": [send("second of two")]},
        ],
    },
]


def split_sop(**extra):
    return {"kind": "nurture", "target": {"rule": {"tags": {"any_of": ["ab"]}}}, "arms": ARMS, **extra}


# -- assignment ---------------------------------------------------------------------------------


def test_ten_thousand_customers_land_in_the_arms_within_one_percent_of_the_weights():
    from sopflow.engine.sops.arms import assign_arm

    for sop_id in (1, 2, 977):
        counts = {a["name"]: 0 for a in ARMS}
        for customer_id in range(1, 10_001):
            counts[assign_arm(sop_id, customer_id, ARMS)] += 1
        shares = {name: n / 10_000 for name, n in counts.items()}
        assert shares == pytest.approx({"short": 0.5, "long": 0.3, "two_step": 0.2}, abs=0.01), shares


def test_the_arm_is_a_function_of_sop_and_customer_and_two_sops_split_independently():
    from sopflow.engine.sops.arms import assign_arm

    halves = [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]
    first = [assign_arm(5, c, halves) for c in range(1, 2001)]
    assert first == [assign_arm(5, c, halves) for c in range(1, 2001)]
    other = [assign_arm(6, c, halves) for c in range(1, 2001)]
    agree = sum(x == y for x, y in zip(first, other, strict=True)) / 2000
    assert 0.45 < agree < 0.55  # another SOP's split is not the same split again


# -- statistics against reference values ------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I, Wilson score
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_the_wilson_interval_matches_the_published_values(k, n, low, high):
    from sopflow.engine.sops.split_stats import wilson_interval

    got = wilson_interval(k, n)
    assert got is not None
    assert (round(got[0], 4), round(got[1], 4)) == (low, high)


def test_no_trials_has_no_interval():
    from sopflow.engine.sops.split_stats import two_proportion_test, wilson_interval

    assert wilson_interval(0, 0) is None
    assert two_proportion_test(0, 0, 1, 2) == {"difference": None, "z": None, "p_value": None}
    assert two_proportion_test(0, 10, 0, 10)["z"] is None  # nobody converted anywhere: nothing to test


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2"), [(30, 100, 45, 100), (120, 1000, 150, 1000), (5, 40, 1, 38)]
)
def test_the_two_proportion_test_matches_the_hand_formula(k1, n1, k2, n2):
    """Against the textbook formula written out here, with the normal
    distribution of the standard library for the p-value (not ``erfc``)."""
    from sopflow.engine.sops.split_stats import two_proportion_test

    p1, p2, pooled = k1 / n1, k2 / n2, (k1 + k2) / (n1 + n2)
    z = (p2 - p1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p_value = 2 * (1 - NormalDist().cdf(abs(z)))
    got = two_proportion_test(k1, n1, k2, n2)
    assert got["difference"] == pytest.approx(p2 - p1)
    assert got["z"] == pytest.approx(z, rel=1e-12)
    assert got["p_value"] == pytest.approx(p_value, rel=1e-9)


def test_a_worked_example_of_the_two_proportion_test():
    """30/100 against 45/100: pooled 0.375, z = 0.15 / sqrt(0.375 · 0.625 · 0.02) = 2.1909, p = 0.0285."""
    from sopflow.engine.sops.split_stats import two_proportion_test

    got = two_proportion_test(30, 100, 45, 100)
    assert round(got["z"], 4) == 2.1909 and round(got["p_value"], 4) == 0.0285


# -- end to end -------------------------------------------------------------------------------


def test_each_customer_gets_their_arms_steps_and_the_stats_report_each_arm(api, sopflow_app, manual_clock):
    from sopflow.engine.sops.arms import assign_arm

    sop = create_sop(api, "ab", split_sop(goal={"event_type": "order.paid"}))
    customers = [add_customer(api, f"wm-ab-{i}", tags=["ab"]) for i in range(30)]
    run_days(sopflow_app, manual_clock, 3)
    arms = {c: assign_arm(sop, c, ARMS) for c in customers}
    assert set(arms.values()) == {"short", "long", "two_step"}  # 30 customers reach every arm
    enrolled = {
        e["customer_id"]: e["arm"]
        for e in api.get(f"/api/v1/sops/{sop}/enrollments?limit=100").json()["items"]
    }
    assert enrolled == arms
    texts = sorted(m.text for m in log_channel(sopflow_app, api).sent)
    expected = {"short": ["short copy"], "long": ["long copy"], "two_step": ["first of two", "second of two"]}
    assert texts == sorted(t for c in customers for t in expected[arms[c]])

    stats = api.get(f"/api/v1/sops/{sop}/stats").json()
    by_arm = {a["arm"]: a for a in stats["arms"]}
    assert [a["arm"] for a in stats["arms"]] == ["short", "long", "two_step"]
    for name in by_arm:
        n = sum(1 for a in arms.values() if a == name)
        assert by_arm[name]["enrolled"] == n and by_arm[name]["sent"]["count"] == n
        assert by_arm[name]["converted"]["count"] == 0
        low, high = by_arm[name]["sent"]["interval_95"]
        assert 0 < low < 1 == high  # every one sent: the interval closes at 1
    assert "versus_first" not in by_arm["short"]
    assert by_arm["long"]["versus_first"]["sent"]["z"] is None  # 100% against 100%: nothing to test


def test_a_customer_keeps_their_arm_on_reentry_even_after_the_weights_change(api, sopflow_app, manual_clock):
    from sopflow.engine.sops.arms import assign_arm

    sop = create_sop(api, "ab", split_sop(reentry=True))
    customer = add_customer(api, "wm-re", tags=["ab"])
    run_days(sopflow_app, manual_clock, 3)
    [first] = api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"]
    assert first["status"] == "completed"
    # give the customer's arm weight 0.001: the hash would now put them elsewhere
    changed = [{**a, "weight": 0.001 if a["name"] == first["arm"] else 100} for a in ARMS]
    assert assign_arm(sop, customer, changed) != first["arm"]
    r = api.patch(f"/api/v1/sops/{sop}", json={"definition": split_sop(reentry=True) | {"arms": changed}})
    assert r.status_code == 200, r.text
    api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": "customer.updated",
                    "idempotency_key": "un-ab",
                    "customer_id": customer,
                    "tags_remove": ["ab"],
                }
            ]
        },
    )
    tag(api, customer, "ab", key="ab-again")
    run_days(sopflow_app, manual_clock, 3)
    entries = api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"]
    assert [e["entry_seq"] for e in entries] == [0, 1]
    assert {e["arm"] for e in entries} == {first["arm"]}


def test_a_read_definition_saves_again_and_bad_arms_are_named(api):
    sop = create_sop(api, "ab", split_sop(), start=False)
    stored = api.get(f"/api/v1/sops/{sop}").json()["definition"]
    assert len(stored["steps"]) == 4  # the arms' steps one after another
    assert api.patch(f"/api/v1/sops/{sop}", json={"definition": stored}).status_code == 200
    bad = split_sop(
        arms=[
            {"name": "A", "weight": 0, "steps": []},
            {"name": "b", "weight": 1, "steps": [{"delay": "1h", "actions": [send("x")]}], "colour": "red"},
        ]
    )
    r = api.post("/api/v1/sops", json={"name": "bad", "definition": bad})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {
        f"definition.{f}" for f in ("arms[0].name", "arms[0].weight", "arms[0].steps", "arms[1].colour")
    } <= fields
    stored["steps"] = stored["steps"][:1]
    r = api.patch(f"/api/v1/sops/{sop}", json={"definition": stored})
    assert r.status_code == 422 and "derived" in r.text
    assert len(api.get(f"/api/v1/sops/{sop}").json()["definition"]["steps"]) == 4  # nothing changed


def test_two_sops_for_two_staff_groups_are_compared_the_same_way(api, sopflow_app, manual_clock):
    def for_staff(staff: str) -> int:
        definition = {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["g"]}}, "staff": [staff]},
            "steps": [{"delay": "1h", "actions": [send("hi")]}],
            "goal": {"event_type": "order.paid"},
            "goal_window_days": 7,
        }
        return create_sop(api, f"group {staff}", definition)

    north, south = for_staff("north"), for_staff("south")
    for i in range(6):
        add_customer(api, f"wm-n{i}", tags=["g"], staff="north")
    for i in range(4):
        add_customer(api, f"wm-s{i}", tags=["g"], staff="south")
    run_days(sopflow_app, manual_clock, 1)
    r = api.get(f"/api/v1/sops/{north}/compare?other={south}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["window_days"] == 7
    a, b = body["groups"]
    assert (a["sop_id"], a["staff"], a["enrolled"], b["sop_id"], b["staff"], b["enrolled"]) == (
        north,
        ["north"],
        6,
        south,
        ["south"],
        4,
    )
    assert b["versus_first"]["converted"] == {"difference": 0.0, "z": None, "p_value": None}
    assert api.get(f"/api/v1/sops/{north}/compare?other={north}").status_code == 422
    assert api.get(f"/api/v1/sops/{north}/compare?other=999999").status_code == 404
