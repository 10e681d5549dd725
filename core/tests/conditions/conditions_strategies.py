"""Hypothesis strategies for the rule-language tests: valid rule trees over a fixed
set of field definitions, and customers with awkward data (missing and null values,
wrong JSON types, unicode, several time zones, instants near DST changes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st
from sopflow.conditions import FIELD_OPS, to_storage

LEVELS = ("金卡", "银卡", "😀vip", "a")
INTERESTS = ("护肤", "防晒霜", "教育", "🍣")
FIELDS = {
    "name": SimpleNamespace(type="text", choices=()),
    "level": SimpleNamespace(type="choice", choices=LEVELS),
    "order_count": SimpleNamespace(type="number", choices=()),
    "orders.total_spend": SimpleNamespace(type="number", choices=()),
    "vip": SimpleNamespace(type="bool", choices=()),
    "insurance_expires_on": SimpleNamespace(type="date", choices=()),
    "last_order_at": SimpleNamespace(type="datetime", choices=()),
    "interests": SimpleNamespace(type="multi_choice", choices=INTERESTS),
}
TAGS = ("拔牙", "防晒霜", "vip", "VIP", "😀", "a b")
STAGE_NAMES = ("激活", "兴趣", "孵化", "决策", "签单")
PIPELINES = (1, 2)
SOURCES = ("qr_spring", "qr_秋", "form")
EVENT_TYPES = ("order.paid", "message.received")
ZONES = ("Asia/Shanghai", "America/New_York", "Australia/Lord_Howe", "UTC", "Pacific/Kiritimati")
CUSTOMER_ZONES = (*ZONES, None, "Not/AZone")
DAY_SPANS = ("1d", "2d", "30d", "60d", "2w")
SPANS = (*DAY_SPANS, "12h", "90m")
RELATIVE = ("within_last", "within_next", "older_than")
SECONDS = (0, 5400, 43200, 86400, 172800, 1209600, 2592000, 5184000, 7776000)

# Instants next to DST changes and local midnights (UTC).
ANCHORS = (
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # New York springs forward
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # New York falls back
    datetime(2026, 4, 4, 15, 0, tzinfo=UTC),  # Lord Howe: 02:00 +11 -> 01:30 +10:30
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # Lord Howe: 02:00 +10:30 -> 02:30 +11
    datetime(2026, 6, 30, 16, 0, tzinfo=UTC),  # midnight in Shanghai
    datetime(2026, 1, 5, 1, 0, tzinfo=UTC),
)

safe_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=4
)
texts = st.one_of(
    st.sampled_from(("", "a", "A", "ab", "拔牙", "防晒霜", "😀", "é", "e\u0301", "Z")), safe_text
)
numbers = st.one_of(
    st.sampled_from((0, -0.0, 1, 2, -1, 1e15, -1e15, 0.1, 0.30000000000000004, 2.5, 2**53, 1.0)),
    st.integers(-5, 5),
    st.floats(-1e16, 1e16, allow_nan=False),
)


@st.composite
def nows(draw: Any) -> datetime:
    anchor = draw(st.sampled_from(ANCHORS))
    minutes = draw(st.sampled_from((0, -1, 1, -30, 30, -60, 60, -600, 600, -1440, 1440)))
    return anchor + timedelta(minutes=minutes, microseconds=draw(st.sampled_from((0, 1, 999999))))


def date_values(now: datetime) -> st.SearchStrategy[str]:
    # Days counted from the local today of one of the zones, so values sit on window edges.
    bases = st.sampled_from(ZONES).map(lambda z: now.astimezone(ZoneInfo(z)).date())
    edges = sorted({s * (d + e) for d in (0, 1, 2, 14, 30, 60) for e in (-1, 0, 1) for s in (1, -1)})
    days = st.one_of(st.sampled_from(edges), st.integers(-75, 75))
    return st.builds(lambda base, k: (base + timedelta(days=k)).isoformat(), bases, days)


def instants(now: datetime) -> st.SearchStrategy[datetime]:
    return st.builds(
        lambda s, sign, d, us: now + sign * timedelta(seconds=s + d, microseconds=us),
        st.sampled_from(SECONDS),
        st.sampled_from((1, -1)),
        st.sampled_from((0, 0, -1, 1, 3600)),
        st.sampled_from((0, 0, 1, 500000)),
    )


def scalar(ftype: str, now: datetime) -> st.SearchStrategy[Any]:
    if ftype == "text":
        return texts
    if ftype in ("choice", "multi_choice"):
        return st.sampled_from(LEVELS if ftype == "choice" else INTERESTS)
    if ftype == "number":
        return numbers
    if ftype == "bool":
        return st.booleans()
    if ftype == "date":
        return date_values(now)
    return instants(now).map(lambda d: to_storage("datetime", d))


@st.composite
def field_predicates(draw: Any, now: datetime) -> dict[str, Any]:
    key = draw(st.sampled_from(sorted(FIELDS)))
    ftype = FIELDS[key].type
    op = draw(st.sampled_from(FIELD_OPS[ftype]))
    one = scalar(ftype, now)
    if op == "exists":
        value: Any = draw(st.booleans())
    elif op in ("within_last", "within_next", "older_than"):
        value = draw(st.sampled_from(DAY_SPANS if ftype == "date" else SPANS))
    elif op in ("in", "not_in"):
        value = draw(st.lists(one, min_size=1, max_size=3))
    elif op == "between":
        value = sorted(draw(st.lists(one, min_size=2, max_size=2)))
    elif op == "contains" and ftype == "text":
        value = draw(texts.filter(bool))
    else:
        value = draw(one)
    return {"field": key, "op": op, "value": value}


def leaves(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    some = st.lists
    relative = st.one_of(
        st.builds(
            lambda op, span: {"field": "insurance_expires_on", "op": op, "value": span},
            st.sampled_from(RELATIVE),
            st.sampled_from(DAY_SPANS),
        ),
        st.builds(
            lambda op, span: {"field": "last_order_at", "op": op, "value": span},
            st.sampled_from(RELATIVE),
            st.sampled_from(SPANS),
        ),
    )
    return st.one_of(
        field_predicates(now),
        field_predicates(now),
        relative,
        st.builds(
            lambda mode, tags: {"tags": {mode: tags}},
            st.sampled_from(("any_of", "all_of", "none_of")),
            some(st.sampled_from(TAGS), min_size=1, max_size=3),
        ),
        st.builds(
            lambda pid, names: {"stage": {"pipeline_id": pid, "in": names}},
            st.sampled_from((*PIPELINES, 99)),
            some(st.sampled_from(STAGE_NAMES), min_size=1, max_size=3),
        ),
        st.builds(lambda b: {"churned": b}, st.booleans()),
        st.builds(lambda s: {"source": {"in": s}}, some(st.sampled_from(SOURCES), min_size=1, max_size=2)),
        st.builds(
            _events,
            st.sampled_from(EVENT_TYPES),
            st.sampled_from((None, 0, 1, 2)),
            st.sampled_from((None, 0, 1, 3)),
            st.sampled_from((None, "1d", "30d", "60d", "90d", "12h")),
        ),
    )


def _events(etype: str, low: int | None, high: int | None, within: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": etype}
    if low is not None:
        spec["min"] = low
    if high is not None:
        spec["max"] = max(high, low or 0)
    if within is not None:
        spec["within"] = within
    return {"events": spec}


def rules(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        leaves(now),
        lambda kids: st.one_of(
            st.lists(kids, min_size=1, max_size=4).map(lambda xs: {"all": xs}),
            st.lists(kids, min_size=1, max_size=4).map(lambda xs: {"any": xs}),
            kids.map(lambda x: {"not": x}),
        ),
        max_leaves=10,
    )


def stored_value(ftype: str, now: datetime) -> st.SearchStrategy[Any]:
    """A field's stored value: mostly well-typed, sometimes null or the wrong JSON type."""
    good: st.SearchStrategy[Any]
    if ftype == "multi_choice":
        good = st.lists(st.sampled_from(INTERESTS), max_size=3).map(sorted)
    else:
        good = scalar(ftype, now)
    wrong = st.sampled_from((None, "5", 5, True, False, "abc", [], {"a": 1}, 0, "2026-01-01", ["护肤"]))
    return st.one_of(good, good, good, wrong)


@st.composite
def customers(draw: Any, now: datetime) -> dict[str, Any]:
    fields = {}
    for key, defn in FIELDS.items():
        if draw(st.booleans()):
            fields[key] = draw(stored_value(defn.type, now))
    stages = {pid: draw(st.sampled_from(STAGE_NAMES)) for pid in PIPELINES if draw(st.booleans())}
    events = draw(st.lists(st.tuples(st.sampled_from(EVENT_TYPES), instants(now)), max_size=4))
    return {
        "fields": fields,
        "tags": draw(st.frozensets(st.sampled_from(TAGS), max_size=3)),
        "stages": stages,
        "churned": draw(st.booleans()),
        "source": draw(st.sampled_from((None, *SOURCES, "QR_SPRING"))),
        "timezone": draw(st.sampled_from(CUSTOMER_ZONES)),
        "events": events,
        "merged": draw(st.integers(0, 9)) == 0,
    }
