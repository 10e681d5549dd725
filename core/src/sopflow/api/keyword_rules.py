"""Keyword rules: words in customers' messages that tag them and set fields."""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs, sopflow_app
from sopflow.api.params import Id
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.keywords.apply import dry_run
from sopflow.engine.keywords.rules import (
    create_rule,
    delete_rule,
    get_rule,
    rule_to_dict,
    update_rule,
)
from sopflow.models import KeywordRule


class KeywordRuleCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    keywords: list[Any]
    actions: list[Any]
    enabled: bool = True
    case_sensitive: bool = False


class KeywordRuleUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    keywords: list[Any] | None = None
    actions: list[Any] | None = None
    enabled: bool | None = None
    case_sensitive: bool | None = None


class KeywordTest(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    include_disabled: bool = False


class KeywordRuleController(Controller):
    path = "/api/v1/keyword-rules"
    tags = ["keyword rules"]

    @get("/", sync_to_thread=True, summary="List keyword rules", guards=[needs("read")])
    def list_rules(self, request: Request, auth: NamedDependency[Auth]) -> list[dict[str, Any]]:
        with sopflow_app(request).read() as s:
            return [
                rule_to_dict(r)
                for r in s.scalars(
                    sa.select(KeywordRule)
                    .where(KeywordRule.tenant_id == auth.tenant_id)
                    .order_by(KeywordRule.id)
                )
            ]

    @post(
        "/",
        sync_to_thread=True,
        summary="Create a keyword rule (keywords → tags and field values)",
        guards=[needs("admin")],
    )
    def create(
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[KeywordRuleCreate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            fields = field_definitions(s, auth.tenant_id, app.plugins)
            rule = create_rule(s, auth.tenant_id, msgspec.to_builtins(data), fields, app.now())
            return rule_to_dict(rule)

    @get("/{rule_id:int}", sync_to_thread=True, summary="One keyword rule", guards=[needs("read")])
    def get_one(self, request: Request, auth: NamedDependency[Auth], rule_id: Id) -> dict[str, Any]:
        with sopflow_app(request).read() as s:
            return rule_to_dict(get_rule(s, auth.tenant_id, rule_id))

    @patch(
        "/{rule_id:int}",
        sync_to_thread=True,
        summary="Change a keyword rule; only the keys sent apply",
        guards=[needs("admin")],
    )
    def update(
        self, request: Request, auth: NamedDependency[Auth], rule_id: Id, data: JSONBody[KeywordRuleUpdate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        changes = {k: v for k, v in msgspec.to_builtins(data).items() if v is not None}
        with app.tx() as s:
            fields = field_definitions(s, auth.tenant_id, app.plugins)
            rule = get_rule(s, auth.tenant_id, rule_id)
            return rule_to_dict(update_rule(s, rule, changes, fields, app.now()))

    @delete("/{rule_id:int}", sync_to_thread=True, summary="Delete a keyword rule", guards=[needs("admin")])
    def remove(self, request: Request, auth: NamedDependency[Auth], rule_id: Id) -> None:
        with sopflow_app(request).tx() as s:
            delete_rule(s, get_rule(s, auth.tenant_id, rule_id))

    @post(
        "/test",
        sync_to_thread=True,
        status_code=200,
        summary="Show what a message would match and which actions would apply; changes nothing",
        guards=[needs("read")],
    )
    def test_text(
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[KeywordTest]
    ) -> dict[str, Any]:
        with sopflow_app(request).tx() as s:
            return dry_run(s, auth.tenant_id, data.text, include_disabled=data.include_disabled)
