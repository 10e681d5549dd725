"""Keyword matching: a tenant's rules compiled into Aho-Corasick automata
(``pyahocorasick``), cached per process and rebuilt when the tenant's revision
counter moved.

One pass over the text finds every occurrence of every keyword, overlapping
ones included (优惠 inside 优惠券 gives both). Rules are case-insensitive unless
``case_sensitive``: keyword and text are compared after Unicode case folding
(``str.casefold``), and hit offsets always point into the original text.

Every write bumps the tenant's row in ``keyword_rule_revisions``; each process
reads that one integer (a primary-key lookup) per message and rebuilds on a
different number, so a change takes effect on the next message everywhere.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import ahocorasick
import attrs
import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.logging import get_logger
from sopflow.models import KeywordRule, KeywordRuleRevision

log = get_logger("sopflow.engine")


def match_key(keyword: str, case_sensitive: bool) -> str:
    """The form a keyword (or text) is matched in: as is, or case-folded."""
    return keyword if case_sensitive else keyword.casefold()


def bump_revision(session: Session, tenant_id: int) -> None:
    """Every write to a tenant's rules bumps its counter in the same transaction
    (the row lock also serialises concurrent writers of one tenant)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(KeywordRuleRevision).values(tenant_id=tenant_id, revision=1)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id"], set_={"revision": KeywordRuleRevision.revision + 1}
        )
    )


def current_revision(session: Session, tenant_id: int) -> int:
    """The tenant's keyword-rule revision (0 before any rule): the per-process
    cache recompiles when it changed."""
    return (
        session.scalar(
            sa.select(KeywordRuleRevision.revision).where(KeywordRuleRevision.tenant_id == tenant_id)
        )
        or 0
    )


@attrs.frozen
class Hit:
    """``keyword`` of rule ``rule_id`` occurs at ``text[start:end]``."""

    rule_id: int
    keyword: str
    start: int
    end: int


@attrs.frozen
class CompiledRule:
    """A keyword rule as matching needs it, detached from the session."""

    id: int
    name: str
    keywords: tuple[str, ...]
    actions: tuple[Mapping[str, Any], ...]
    enabled: bool = True
    case_sensitive: bool = False


def fold(text: str) -> tuple[str, Sequence[int]]:
    """``text`` case-folded, and for each folded character the index of the
    original character it came from (folding can lengthen: 'ß' → 'ss')."""
    folded = text.casefold()
    if len(folded) == len(text):  # no character folds to zero, so each folded to exactly one
        return folded, range(len(text))
    parts: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        folded = ch.casefold()
        parts.append(folded)
        origin.extend([i] * len(folded))
    return "".join(parts), origin


class CompiledRules:
    """A tenant's rules with one automaton for the case-sensitive keywords and one
    for the case-folded ones.  Immutable once built; shared between threads."""

    def __init__(self, rules: Iterable[CompiledRule]) -> None:
        self.rules = tuple(sorted(rules, key=lambda r: r.id))
        self.by_id = {r.id: r for r in self.rules}
        self._all_ids = frozenset(self.by_id)
        self._enabled_ids = frozenset(r.id for r in self.rules if r.enabled)
        self._exact = self._build(r for r in self.rules if r.case_sensitive)
        self._folded = self._build(r for r in self.rules if not r.case_sensitive)

    @staticmethod
    def _build(rules: Iterable[CompiledRule]) -> Any:
        entries: dict[str, list[tuple[int, str]]] = {}
        for rule in rules:
            for word in rule.keywords:
                key = match_key(word, rule.case_sensitive)
                owners = entries.setdefault(key, []) if key else []
                if (rule.id, word) not in owners:
                    owners.append((rule.id, word))
        if not entries:
            return None
        automaton = ahocorasick.Automaton()
        for key, owners in entries.items():
            automaton.add_word(key, (len(key), tuple(owners)))
        automaton.make_automaton()
        return automaton

    def iter_hits(self, text: str, *, include_disabled: bool = False) -> Iterator[Hit]:
        """Every occurrence of every keyword, overlapping ones included, in no set order."""
        if not text:
            return
        enabled = self._all_ids if include_disabled else self._enabled_ids
        if self._exact is not None:
            for last, (length, owners) in self._exact.iter(text):
                for rule_id, word in owners:
                    if rule_id in enabled:
                        yield Hit(rule_id, word, last - length + 1, last + 1)
        if self._folded is not None:
            folded, origin = fold(text)
            identity = len(folded) == len(text)  # every character folded to one: offsets agree
            seen: set[Hit] = set()
            for last, (length, owners) in self._folded.iter(folded):
                start, end = origin[last - length + 1], origin[last] + 1
                for rule_id, word in owners:
                    if rule_id not in enabled:
                        continue
                    hit = Hit(rule_id, word, start, end)
                    if not identity:
                        if hit in seen:  # two matches inside one expanded character
                            continue
                        seen.add(hit)
                    yield hit

    def match(self, text: str, *, include_disabled: bool = False) -> list[Hit]:
        """Every hit, sorted by position then rule."""
        return sorted(
            self.iter_hits(text, include_disabled=include_disabled),
            key=lambda h: (h.start, h.end, h.rule_id, h.keyword),
        )


def compile_rows(rows: Iterable[KeywordRule]) -> CompiledRules:
    """Compile stored rules into one matcher."""
    return CompiledRules(
        CompiledRule(
            id=r.id,  # type: ignore[arg-type]
            name=r.name,
            keywords=tuple(r.keywords),
            actions=tuple(dict(a) for a in r.actions),
            enabled=r.enabled,
            case_sensitive=r.case_sensitive,
        )
        for r in rows
    )


EMPTY = CompiledRules(())


class _Cache:
    """Compiled rules per (database engine, tenant) with the revision they were
    built from.  Keyed on the engine so apps on different databases in one
    process (tests, the CLI) never share entries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_engine: weakref.WeakKeyDictionary[Any, dict[int, tuple[int, CompiledRules]]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, session: Session, tenant_id: int) -> CompiledRules:
        bind = session.get_bind()
        engine = getattr(bind, "engine", bind)
        # Read the revision before the rules: a write committing in between makes
        # us cache newer rules under the older number, which only costs a rebuild.
        revision = current_revision(session, tenant_id)
        if revision == 0:
            return EMPTY
        with self._lock:
            entry = self._by_engine.setdefault(engine, {}).get(tenant_id)
        if entry is not None and entry[0] == revision:
            return entry[1]
        compiled = compile_rows(
            session.scalars(
                sa.select(KeywordRule).where(KeywordRule.tenant_id == tenant_id).order_by(KeywordRule.id)
            )
        )
        with self._lock:
            self._by_engine.setdefault(engine, {})[tenant_id] = (revision, compiled)
        log.debug("keyword_rules_loaded", tenant_id=tenant_id, revision=revision, rules=len(compiled.rules))
        return compiled


_cache = _Cache()


def tenant_rules(session: Session, tenant_id: int) -> CompiledRules:
    """The tenant's compiled rules, rebuilt when they changed since last asked.
    Call it from a transaction that has not written keyword rules itself."""
    return _cache.get(session, tenant_id)
