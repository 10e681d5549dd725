"""The rule language: one parser, two back-ends that agree on every input.

* :func:`parse` (alias :func:`validate`) turns a JSON rule into a :class:`Rule`,
  checked against the tenant's field definitions, or raises :class:`RuleError`
  listing every problem with its path and fix.
* :func:`evaluate` decides one :class:`CustomerSnapshot` in Python (event time).
* :func:`compile_rule` gives a SQLAlchemy WHERE clause over ``customers``;
  :func:`select_customers` / :func:`count_customers` run it (audiences, sync).
* :func:`to_storage` is the stored form writers must use for field values.

See ``docs/rules.md`` for the language, null semantics and time zones.
"""

from sopflow.conditions.compile import compile_rule, needs_timezones
from sopflow.conditions.errors import RuleError
from sopflow.conditions.evaluate import CustomerSnapshot, evaluate
from sopflow.conditions.nodes import FIELD_OPS, Rule
from sopflow.conditions.parse import MAX_DEPTH, MAX_NODES, parse, validate
from sopflow.conditions.query import (
    audience_filter,
    count_customers,
    select_customers,
    snapshot_customer,
    snapshot_customers,
)
from sopflow.conditions.storage import to_storage
from sopflow.conditions.windows import parse_duration, resolve_timezone

__all__ = [
    "FIELD_OPS",
    "MAX_DEPTH",
    "MAX_NODES",
    "CustomerSnapshot",
    "Rule",
    "RuleError",
    "audience_filter",
    "compile_rule",
    "count_customers",
    "evaluate",
    "needs_timezones",
    "parse",
    "parse_duration",
    "resolve_timezone",
    "select_customers",
    "snapshot_customer",
    "snapshot_customers",
    "to_storage",
    "validate",
]
