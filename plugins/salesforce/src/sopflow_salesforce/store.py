"""The Salesforce plugin's own tables (its Alembic branch is ``migrations/``).

- ``salesforce_links``: which record is which customer, the record's last
  ``SystemModstamp`` seen, and ``synced``: each mapped field's value as both
  sides last agreed on it.  An inbound value equal to ``synced`` is no change
  (that is how a value sopflow wrote does not echo back); a value that differs
  on both sides from ``synced`` is a conflict.
- ``salesforce_outbox``: writes to Salesforce still to make.  A row is written
  in the same transaction as the change it carries, claimed (``sending``)
  before the call and settled (``done`` / ``failed``) after it, so a crash
  never loses a write, and a row left ``sending`` is reconciled against what
  Salesforce holds before it is sent again, so none is written twice.

Plain integer ``tenant_id``/``account_id``/``customer_id`` columns, no foreign
keys into core's schema.  Reached through ``host.transaction(...).connection``.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sopflow_sdk import MigrationsSpec

metadata = sa.MetaData()

links = sa.Table(
    "salesforce_links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("record_id", sa.String(18), nullable=False),
    sa.Column("customer_id", sa.Integer, nullable=False),
    sa.Column("modstamp", sa.String(32), nullable=False),
    sa.Column("synced", sa.JSON, nullable=False),
    sa.UniqueConstraint("account_id", "record_id", name="uq_salesforce_links_record"),
    sa.Index("ix_salesforce_links_customer", "account_id", "customer_id"),
)

outbox = sa.Table(
    "salesforce_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("customer_id", sa.Integer, nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),  # Salesforce field → value to write
    sa.Column("state", sa.String(10), nullable=False),  # pending, sending, done, failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_salesforce_outbox_due", "account_id", "state", "id"),
)


def migrations_spec() -> MigrationsSpec:
    """The plugin's branch, for ``register_migrations``."""
    return MigrationsSpec(
        Path(__file__).parent / "migrations",
        metadata=metadata,
        description="Salesforce record links (with the last agreed values) and the write outbox",
    )
