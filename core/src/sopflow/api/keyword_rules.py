"""Keyword rules: words in customers' messages that tag them and set fields."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs
from sopflow.api.params import Id
from sopflow.api.responses import shape
from sopflow.api.responses.keywords import KeywordRuleOut, KeywordTestOut
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.keywords.apply import dry_run
from sopflow.engine.keywords.rules import (
    create_rule,
    delete_rule,
    get_rule,
    list_rules,
    rule_to_dict,
    update_rule,
)


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


A = NamedDependency[Auth]
S = NamedDependency[Session]
App = NamedDependency[SopflowApp]


class KeywordTest(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    include_disabled: bool = False


class KeywordRuleController(Controller):
    path = "/api/v1/keyword-rules"
    tags = ["keyword rules"]

    @get("/", sync_to_thread=True, summary="List keyword rules", guards=[needs("read")])
    def list_rules(self, auth: A, session: S) -> list[KeywordRuleOut]:
        return shape(list[KeywordRuleOut], list_rules(session, auth.tenant_id))

    @post(
        "/",
        sync_to_thread=True,
        summary="Create a keyword rule (keywords → tags and field values)",
        guards=[needs("admin")],
    )
    def create(self, sopflow: App, auth: A, session: S, data: JSONBody[KeywordRuleCreate]) -> KeywordRuleOut:
        fields = field_definitions(session, auth.tenant_id, sopflow.plugins)
        rule = create_rule(session, auth.tenant_id, msgspec.to_builtins(data), fields, sopflow.now())
        return shape(KeywordRuleOut, rule_to_dict(rule))

    @get("/{rule_id:int}", sync_to_thread=True, summary="One keyword rule", guards=[needs("read")])
    def get_one(self, auth: A, session: S, rule_id: Id) -> KeywordRuleOut:
        return shape(KeywordRuleOut, rule_to_dict(get_rule(session, auth.tenant_id, rule_id)))

    @patch(
        "/{rule_id:int}",
        sync_to_thread=True,
        summary="Change a keyword rule; only the keys sent apply",
        guards=[needs("admin")],
    )
    def update(
        self, sopflow: App, auth: A, session: S, rule_id: Id, data: JSONBody[KeywordRuleUpdate]
    ) -> KeywordRuleOut:
        changes = {k: v for k, v in msgspec.to_builtins(data).items() if v is not None}
        fields = field_definitions(session, auth.tenant_id, sopflow.plugins)
        rule = get_rule(session, auth.tenant_id, rule_id)
        return shape(KeywordRuleOut, rule_to_dict(update_rule(session, rule, changes, fields, sopflow.now())))

    @delete("/{rule_id:int}", sync_to_thread=True, summary="Delete a keyword rule", guards=[needs("admin")])
    def remove(self, auth: A, session: S, rule_id: Id) -> None:
        delete_rule(session, get_rule(session, auth.tenant_id, rule_id))

    @post(
        "/test",
        sync_to_thread=True,
        status_code=200,
        summary="Show what a message would match and which actions would apply; changes nothing",
        guards=[needs("read")],
    )
    def test_text(self, auth: A, session: S, data: JSONBody[KeywordTest]) -> KeywordTestOut:
        found = dry_run(session, auth.tenant_id, data.text, include_disabled=data.include_disabled)
        return shape(KeywordTestOut, found)
