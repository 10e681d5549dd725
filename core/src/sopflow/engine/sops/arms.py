"""Random splits: an SOP's ``arms``, each with a weight and its own steps.

The stored definition keeps the arms (name, weight, steps) and, as ``steps``,
every arm's steps one after another: a touch's ``step_index`` indexes that
list, so delivery, caps and stats read a step the same way with or without
arms.  A customer's arm is a pure function of (SOP, customer) — a hash, not
a draw — so the same customer lands in the same arm on every entry, on every
process, without storing a seed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

#: 2**64: a hash's first eight bytes read as a fraction of this
_SCALE = float(1 << 64)


def assign_arm(sop_id: int, customer_id: int, arms: Sequence[Mapping[str, Any]]) -> str:
    """The arm (its name) customer ``customer_id`` gets in SOP ``sop_id``: a point
    in [0, 1) from SHA-256 of the pair, placed on the arms' cumulative weights."""
    digest = hashlib.sha256(f"sopflow-arm:{sop_id}:{customer_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / _SCALE
    total = sum(float(a["weight"]) for a in arms)
    edge = 0.0
    for arm in arms:
        edge += float(arm["weight"]) / total
        if point < edge:
            return str(arm["name"])
    return str(arms[-1]["name"])  # rounding: the point sat on the last edge


def arm_range(definition: Mapping[str, Any], name: str | None) -> range:
    """The step indexes of arm ``name`` in the definition's ``steps`` (all of
    them for an SOP without arms, or for an arm it no longer has)."""
    first = 0
    for arm in definition.get("arms") or []:
        if arm["name"] == name:
            return range(first, first + len(arm["steps"]))
        first += len(arm["steps"])
    return range(len(definition["steps"]))


def first_of_its_arm(definition: Mapping[str, Any], index: int) -> bool:
    """Whether step ``index`` opens its arm (or the SOP): no step before it to wait on."""
    first = 0
    for arm in definition.get("arms") or []:
        if index == first:
            return True
        first += len(arm["steps"])
    return index == 0


def arm_names(definition: Mapping[str, Any]) -> list[str]:
    """The SOP's arms by name, in order (empty without a split)."""
    return [a["name"] for a in definition.get("arms") or []]
