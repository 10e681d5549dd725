"""Each validation error names its path and says how to fix it; all are reported at once."""

from __future__ import annotations

from typing import Any

import pytest
from conditions_strategies import FIELDS
from sopflow.conditions import MAX_DEPTH, RuleError, parse
from sopflow_sdk import ConfigError


def problems(rule: Any, **kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(RuleError) as info:
        parse(rule, FIELDS, **kw)
    assert isinstance(info.value, ConfigError)
    return info.value.problems


def test_unknown_field_suggests_the_closest() -> None:
    rule = {"all": [{"churned": False}, {"any": [{"field": "ordr_count", "op": "gte", "value": 2}]}]}
    assert problems(rule) == [
        ("all[1].any[0].field", "unknown field 'ordr_count' — did you mean 'order_count'?")
    ]


def test_unknown_field_without_a_close_match_says_how_to_define_it() -> None:
    [(path, msg)] = problems({"field": "zzz", "op": "eq", "value": 1})
    assert path == "field" and "POST /api/v1/fields" in msg


def test_wrong_value_type() -> None:
    assert problems({"field": "order_count", "op": "gte", "value": "abc"}) == [
        ("value", "'abc' is not a number for field 'order_count'")
    ]
    assert problems({"field": "order_count", "op": "eq", "value": True}) == [
        ("value", "True is not a number for field 'order_count'")
    ]
    [(path, msg)] = problems({"field": "vip", "op": "eq", "value": 1})
    assert path == "value" and "not true or false" in msg


def test_unknown_op_lists_the_valid_ones() -> None:
    [(path, msg)] = problems({"field": "vip", "op": "greater", "value": 1})
    assert path == "op"
    assert msg == "unknown op 'greater'; use one of eq, ne, exists for field 'vip' (bool)"


def test_op_that_does_not_fit_the_type() -> None:
    [(path, msg)] = problems({"field": "level", "op": "lt", "value": "金卡"})
    assert path == "op" and "op 'lt' does not apply to choice fields" in msg


def test_choice_value_not_among_the_choices() -> None:
    [(path, msg)] = problems({"field": "level", "op": "in", "value": ["金卡", "金"]})
    assert path == "value[1]"
    assert msg.startswith("'金' is not a choice of field 'level'")


def test_empty_groups_and_lists() -> None:
    assert problems({"all": []}) == [("all", "'all' needs a non-empty list of conditions")]
    [(path, _)] = problems({"any": [{"tags": {"any_of": []}}]})
    assert path == "any[0].tags.any_of"


def test_every_problem_is_reported_together() -> None:
    rule = {
        "all": [
            {"field": "ordr_count", "op": "gte", "value": 2},
            {"field": "order_count", "op": "between", "value": [5, 1]},
            {"field": "last_order_at", "op": "within_last", "value": "30 days"},
            {"events": {"type": "order.paid", "min": 3, "max": 1}},
            {"stage": {"pipeline_id": 1, "in": ["兴趣", "孵"]}},
            {"bogus": 1},
        ]
    }
    found = problems(rule, stages={1: ["兴趣", "孵化"]})
    assert [p for p, _ in found] == ["all[0].field", "all[1].value", "all[2].value", "all[3].events",
                                     "all[4].stage.in[1]", "all[5]"]  # fmt: skip
    assert "did you mean '孵化'?" in found[4][1]
    assert "'90m', '12h', '30d', '2w'" in found[2][1]


def test_nesting_deeper_than_the_limit() -> None:
    rule: Any = {"churned": True}
    for _ in range(MAX_DEPTH + 1):
        rule = {"not": rule}
    [(path, msg)] = problems(rule)
    assert path.startswith("not.not") and "deeper than 10" in msg
    ok: Any = {"churned": True}
    for _ in range(MAX_DEPTH):
        ok = {"not": ok}
    parse(ok, FIELDS)


def test_more_than_200_nodes() -> None:
    rule = {"any": [{"churned": True}] * 200}
    [(path, msg)] = problems(rule)
    assert path == "rule" and "at most 200" in msg


def test_date_fields_take_whole_days() -> None:
    [(_, msg)] = problems({"field": "insurance_expires_on", "op": "within_next", "value": "12h"})
    assert "use 'd' or 'w'" in msg


def test_date_and_datetime_values_are_normalised() -> None:
    rule = parse({"field": "last_order_at", "op": "gt", "value": "2026-05-01T09:00:00+08:00"}, FIELDS)
    assert rule.root.value == "2026-05-01T01:00:00+00:00"  # type: ignore[union-attr]
    [(_, msg)] = problems({"field": "last_order_at", "op": "gt", "value": "2026-05-01T09:00:00"})
    assert "no UTC offset" in msg
    [(_, msg)] = problems({"field": "insurance_expires_on", "op": "eq", "value": "2026-5-1"})
    assert "not a date 'YYYY-MM-DD'" in msg


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ([], "rule"),
        ({"all": [1]}, "all[0]"),
        ({"churned": "yes"}, "churned"),
        ({"source": {"in": "qr"}}, "source.in"),
        ({"events": {"type": "", "min": -1}}, "events.type"),
        ({"field": "name", "op": "contains", "value": ""}, "value"),
        ({"field": "name", "op": "exists"}, "value"),
        ({"field": "name", "op": "eq", "value": "x", "extra": 1}, "rule"),
        ({"tags": {"any_of": ["x"]}, "churned": True}, "rule"),
        ({"stage": {"pipeline_id": "1", "in": ["兴趣"]}}, "stage.pipeline_id"),
        ({"field": "order_count", "op": "eq", "value": 2**60}, "value"),
        ({"field": "order_count", "op": "eq", "value": float("nan")}, "value"),
    ],
)
def test_malformed_nodes(rule: Any, path: str) -> None:
    assert problems(rule)[0][0] == path


def test_error_message_joins_all_problems() -> None:
    with pytest.raises(RuleError) as info:
        parse({"all": [{"field": "x", "op": "eq", "value": 1}, {"churned": 1}]}, FIELDS)
    assert str(info.value).startswith("invalid rule: all[0].field: unknown field 'x'")
