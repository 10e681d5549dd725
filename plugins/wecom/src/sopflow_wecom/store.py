"""The WeCom plugin's own tables (its Alembic branch is ``migrations/``).

- ``wecom_live_codes``: the live QR codes (联系我) made through sopflow, or
  adopted from WeCom by a sync, so listing them needs no WeCom call.
- ``wecom_corp_tags``: every corp tag name seen per account, kept after the tag
  is renamed or deleted, so a ``change_external_tag`` callback (which carries
  only the id) can name the old tag even after a restart.

Plugin tables carry ``tenant_id`` and ``account_id`` as plain integers (no
foreign keys into core's schema, which is not part of the SDK); every query
here filters on them.  Reached through ``host.transaction(tenant_id).connection``.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sopflow_sdk import MigrationsSpec

metadata = sa.MetaData()

live_codes = sa.Table(
    "wecom_live_codes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("config_id", sa.String(64), nullable=False),
    sa.Column("source", sa.String(30), nullable=True),
    sa.Column("staff", sa.JSON, nullable=False),
    sa.Column("remark", sa.String(100), nullable=False),
    sa.Column("qr_code", sa.Text, nullable=True),
    sa.Column("multi_person", sa.Boolean, nullable=False),
    # Unix seconds.  Made through sopflow: both the moment it was made.  Adopted by a
    # sync: the list_contact_way window it was found in (WeCom never says when).
    sa.Column("created_from", sa.BigInteger, nullable=False),
    sa.Column("created_to", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("account_id", "config_id", name="uq_wecom_live_codes_account_config"),
    sa.Index("ix_wecom_live_codes_listing", "tenant_id", "account_id", "created_to", "id"),
)

corp_tags = sa.Table(
    "wecom_corp_tags",
    metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    # an account id can be reconfigured to another corp: names are kept per corp
    sa.Column("corp_id", sa.String(64), primary_key=True),
    sa.Column("tag_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("group_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("seen_at", sa.BigInteger, nullable=False),
)

#: One customer handed from one member to another (在职/离职继承): ``state`` planned →
#: started → done | refused | limit, or rejected (WeCom's ``errcode`` said no).  A row
#: is written before WeCom is called, so a crash leaves it planned and the call is
#: made again (WeCom answers 40129 for one already started): see ``transfers.py``.
transfers = sa.Table(
    "wecom_transfers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("handover_userid", sa.String(64), nullable=False),
    sa.Column("takeover_userid", sa.String(64), nullable=False),
    sa.Column("external_userid", sa.String(64), nullable=False),
    sa.Column("success_msg", sa.String(200), nullable=True),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("errcode", sa.Integer, nullable=True),
    # Unix seconds
    sa.Column("requested_at", sa.BigInteger, nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=True),
    sa.Column("finished_at", sa.BigInteger, nullable=True),
    sa.Index("ix_wecom_transfers_open", "account_id", "state", "handover_userid"),
    sa.Index("ix_wecom_transfers_customer", "account_id", "external_userid"),
)


def migrations_spec() -> MigrationsSpec:
    """The plugin's branch, for ``register_migrations``."""
    return MigrationsSpec(
        Path(__file__).parent / "migrations",
        metadata=metadata,
        description="WeCom live codes, the corp tag names seen and customer transfers",
    )
