"""Dialect-specific SQL for reading typed values out of ``customers.fields``.

Each reader returns the stored value when its JSON type is the one the field
type stores and SQL NULL otherwise (missing key, JSON null, wrong type), so a
wrongly-typed value never raises a cast error and never compares.

* SQLite: ``json_type`` guards ``json_extract`` (which returns 1/0 for JSON
  booleans and NULL for JSON null).  Text compares with the default BINARY
  collation, i.e. UTF-8 bytes, i.e. code-point order, like Python ``str``.
* Postgres: ``jsonb_typeof`` guards the casts inside a CASE (an AND would not
  guarantee the order of evaluation); text gets ``COLLATE "C"``; numbers are
  read as ``double precision``, exact for the integers (±2**53) and the floats
  that storage allows.

:class:`PerDialect` picks the SQLite or Postgres form when the statement is
compiled, so ``compile_rule`` returns one expression that runs on both.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement

from sopflow.models import Customer

customers = Customer.__table__
FIELDS = customers.c.fields

SQLITE_TYPES = {"text": ("text",), "number": ("integer", "real"), "array": ("array",)}
PG_TYPES = {"text": "string", "number": "number", "array": "array"}


class PerDialect(ColumnElement[Any]):
    """One expression per dialect; the compiler chooses.  Not cached (cheap to build)."""

    inherit_cache = False

    def __init__(self, sqlite: ColumnElement[Any], postgresql: ColumnElement[Any], type_: Any = None) -> None:
        self.sqlite = sqlite
        self.postgresql = postgresql
        self.type = type_ if type_ is not None else sqlite.type

    @property
    def _from_objects(self) -> list[Any]:
        return [customers]


@compiles(PerDialect)
def _compile_per_dialect(element: PerDialect, compiler: Any, **kw: Any) -> str:
    chosen = element.postgresql if compiler.dialect.name == "postgresql" else element.sqlite
    # Always parenthesised: the compiler cannot see inside, so it cannot group for precedence.
    return f"({compiler.process(chosen, **kw)})"


def storage_kind(field_type: str) -> str:
    """The JSON kind a field type is stored as."""
    if field_type == "number":
        return "number"
    if field_type == "bool":
        return "bool"
    if field_type == "multi_choice":
        return "array"
    return "text"


def _sqlite_path(key: str) -> str:
    return f'$."{key}"'


def _pg_node(key: str) -> ColumnElement[Any]:
    return FIELDS.op("->", return_type=JSONB)(sa.literal(key, sa.Text))


def _pg_text(key: str) -> ColumnElement[Any]:
    return FIELDS.op("->>", return_type=sa.Text)(sa.literal(key, sa.Text))


def typed_value(field_type: str, key: str) -> ColumnElement[Any]:
    """The field's value as a comparable SQL scalar, or NULL when it has none.

    Text-like fields (text, choice, date, datetime) give text, numbers give a
    double, bools give 1/0.  Multi-choice fields are not scalars: see
    :func:`array_contains` and :func:`present`.
    """
    kind = storage_kind(field_type)
    path = sa.literal(_sqlite_path(key), sa.Text)
    jtype = sa.func.json_type(FIELDS, path)
    pg_type = sa.func.jsonb_typeof(_pg_node(key))
    if kind == "bool":
        lite = sa.case((jtype == "true", 1), (jtype == "false", 0))
        pg = sa.case(
            (_pg_node(key) == sa.cast(sa.literal("true"), JSONB), 1),
            (_pg_node(key) == sa.cast(sa.literal("false"), JSONB), 0),
        )
        return PerDialect(lite, pg, sa.Integer())
    lite = sa.case((jtype.in_(SQLITE_TYPES[kind]), sa.func.json_extract(FIELDS, path)))
    if kind == "number":
        pg = sa.case((pg_type == "number", sa.cast(_pg_text(key), sa.Double())))
        return PerDialect(lite, pg, sa.Double())
    pg = sa.collate(sa.case((pg_type == "string", _pg_text(key))), "C")
    return PerDialect(lite, pg, sa.Text())


def present(field_type: str, key: str) -> ColumnElement[bool]:
    """True when the field holds a value of its type (never NULL)."""
    kind = storage_kind(field_type)
    jtype = sa.func.json_type(FIELDS, sa.literal(_sqlite_path(key), sa.Text))
    allowed = SQLITE_TYPES.get(kind, ("true", "false"))
    lite = sa.func.coalesce(jtype.in_(allowed), sa.false())
    pg_kind = PG_TYPES.get(kind, "boolean")
    pg = sa.func.coalesce(sa.func.jsonb_typeof(_pg_node(key)) == pg_kind, sa.false())
    return PerDialect(lite, pg, sa.Boolean())


def array_contains(key: str, item: str) -> ColumnElement[bool]:
    """A multi-choice field holds ``item`` (never NULL)."""
    each = sa.func.json_each(FIELDS, sa.literal(_sqlite_path(key), sa.Text)).table_valued("value", "type")
    lite = (
        sa.select(sa.literal(1))
        .select_from(each)
        .where(each.c.type == "text", each.c.value == sa.literal(item, sa.Text))
        .exists()
    )
    lite = sa.and_(present("multi_choice", key), lite)
    pg = sa.func.coalesce(
        _pg_node(key).op("@>", return_type=sa.Boolean)(sa.cast(sa.literal(json.dumps([item])), JSONB)),
        sa.false(),
    )
    return PerDialect(lite, pg, sa.Boolean())


def equals(field_type: str, key: str, values: tuple[Any, ...]) -> ColumnElement[bool]:
    """The field equals one of ``values`` (never NULL).

    Postgres uses JSONB containment (``fields @> '{"k": v}'``), which is
    type-exact and served by a GIN index on ``fields``.
    """
    typed = typed_value(field_type, key)
    if field_type == "bool":
        lite = sa.func.coalesce(typed.in_([int(v) for v in values]), sa.false())
    elif field_type == "number":
        lite = sa.func.coalesce(typed.in_([float(v) for v in values]), sa.false())
    else:
        lite = sa.func.coalesce(typed.in_(list(values)), sa.false())
    docs = [sa.cast(sa.literal(json.dumps({key: v}, ensure_ascii=False)), JSONB) for v in values]
    pg = sa.or_(*(FIELDS.op("@>", return_type=sa.Boolean)(doc) for doc in docs))
    return PerDialect(lite, pg, sa.Boolean())


def text_contains(key: str, needle: str) -> ColumnElement[bool]:
    """A text field contains ``needle`` as an exact, case-sensitive substring (may be NULL)."""
    typed = typed_value("text", key)
    lite = sa.func.instr(typed.sqlite, needle) > 0  # type: ignore[attr-defined]
    pg = sa.func.strpos(typed.postgresql, needle) > 0  # type: ignore[attr-defined]
    return PerDialect(lite, pg, sa.Boolean())
