"""Keyword rules and their dry run as the API shows them."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from sopflow.api.responses import Instant, Out

#: a stored action is one the parser took, trimmed (engine/keywords/schema.py)
Actions = list[
    Annotated[dict[str, Any], msgspec.Meta(extra_json_schema={"$ref": "#/components/schemas/KeywordAction"})]
]


class KeywordRuleOut(Out):
    id: int
    name: str
    keywords: list[str]
    #: each action: tag, untag or set a field (docs/keywords.md)
    actions: Actions
    enabled: bool
    case_sensitive: bool
    created_at: Instant
    updated_at: Instant


class KeywordHit(Out):
    rule_id: int
    rule_name: str
    keyword: str
    start: int
    end: int


class MatchedRule(Out):
    id: int
    name: str
    actions: Actions


class KeywordTestOut(Out):
    """What a message would match (the first hits, and how many in all) and what would apply."""

    hits: list[KeywordHit]
    hit_count: int
    rules: list[MatchedRule]
    keywords: list[str]
    tags_add: list[str]
    tags_remove: list[str]
    #: field key → the value it would be set to (in its stored form)
    fields: dict[str, Any]
