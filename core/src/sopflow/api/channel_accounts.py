"""Channel accounts (engine.delivery.accounts).  Secrets go in encrypted and never
come out: responses list only the names of the stored secrets; a channel's
declared settings are checked on create and update."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs
from sopflow.api.params import Id
from sopflow.api.responses import shape
from sopflow.api.responses.settings import ChannelAccountOut
from sopflow.api.schemas import ChannelAccountCreate, ChannelAccountUpdate
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.engine.delivery.accounts import (
    account_to_dict,
    create_account,
    delete_account,
    get_account,
    list_accounts,
    update_account,
)


class ChannelAccountController(Controller):
    path = "/api/v1/channel-accounts"
    tags = ["channel-accounts"]

    @get(
        "/",
        sync_to_thread=True,
        summary="List channel accounts (secrets never shown)",
        guards=[needs("read")],
    )
    def list_accounts(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
    ) -> list[ChannelAccountOut]:
        return shape(list[ChannelAccountOut], list_accounts(sopflow, session, auth.tenant_id))

    @post(
        "/",
        sync_to_thread=True,
        summary="Connect a channel account; secrets are encrypted at rest",
        guards=[needs("admin")],
    )
    def create(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        data: JSONBody[ChannelAccountCreate],
    ) -> ChannelAccountOut:
        account = create_account(
            sopflow, session, auth.tenant_id, data.channel, data.name, data.config, data.secrets
        )
        return shape(ChannelAccountOut, account)

    @get("/{account_id:int}", sync_to_thread=True, summary="One channel account", guards=[needs("read")])
    def get_one(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        account_id: Id,
    ) -> ChannelAccountOut:
        return shape(
            ChannelAccountOut, account_to_dict(sopflow, get_account(session, auth.tenant_id, account_id))
        )

    @patch(
        "/{account_id:int}",
        sync_to_thread=True,
        summary="Rename, reconfigure or rotate secrets",
        guards=[needs("admin")],
    )
    def update(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        account_id: Id,
        data: ChannelAccountUpdate,
    ) -> ChannelAccountOut:
        account = update_account(
            sopflow, session, auth.tenant_id, account_id, data.name, data.config, data.secrets
        )
        return shape(ChannelAccountOut, account)

    @delete(
        "/{account_id:int}",
        sync_to_thread=True,
        summary="Disconnect a channel account",
        guards=[needs("admin")],
    )
    def remove(self, auth: NamedDependency[Auth], session: NamedDependency[Session], account_id: Id) -> None:
        delete_account(session, auth.tenant_id, account_id)
