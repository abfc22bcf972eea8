"""JMAP: push subscriptions; ids that are never handed out twice on SQLite

Revision ID: 0014_jmap
Revises: 0008_identity

- ``push_subscriptions``: RFC 8620 §7.2 PushSubscription objects.
- JMAP ids must never name a second object. Without ``AUTOINCREMENT`` SQLite hands out the
  highest id again once its row is deleted, so ``users``, ``labels``, ``threads`` and
  ``emails`` (the rows behind account, Mailbox, Thread and Email ids) get it. The table's
  stored definition is rewritten (``writable_schema``): an ``INTEGER PRIMARY KEY`` is the
  rowid either way, so the rows on disk stay as they are; only how the next id is chosen
  changes. Each table's sequence starts at the highest id it ever had: its rows, and the
  change log's, which remembers deleted ones. PostgreSQL's sequences never go back: nothing
  to do there.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

import mailroom.store.types

revision = "0014_jmap"
down_revision = "0008_identity"
branch_labels = None
depends_on = None

#: Table → the change log kind whose object ids are its ids (None: not logged).
_TABLES = {"users": None, "labels": 3, "threads": 2, "emails": 1}


def _autoincrement_sql(table: str, sql: str) -> str:
    if "AUTOINCREMENT" in sql:
        return sql
    pk = re.search(r",\s*CONSTRAINT (pk_\w+) PRIMARY KEY \(id\)", sql)
    column = re.search(r"\bid INTEGER NOT NULL,", sql)
    if pk is None or column is None:
        raise RuntimeError(f"unexpected definition of table {table}: {sql[:200]}")
    sql = sql[: pk.start()] + sql[pk.end() :]
    return sql.replace(
        "id INTEGER NOT NULL,", f"id INTEGER NOT NULL CONSTRAINT {pk.group(1)} PRIMARY KEY AUTOINCREMENT,", 1
    )


def _sqlite_autoincrement() -> None:
    bind = op.get_bind()
    # sqlite_sequence exists once any AUTOINCREMENT table was made: make (and drop) one.
    bind.exec_driver_sql("CREATE TABLE _jmap_seq (id INTEGER PRIMARY KEY AUTOINCREMENT)")
    bind.exec_driver_sql("DROP TABLE _jmap_seq")
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar() or 0)
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        for table in _TABLES:
            sql = bind.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).scalar()
            bind.exec_driver_sql(
                "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                (_autoincrement_sql(table, str(sql)), table),
            )
        bind.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    for table, kind in _TABLES.items():
        highest = int(bind.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar() or 0)  # noqa: S608
        if kind is not None:
            logged = bind.exec_driver_sql(
                "SELECT coalesce(max(object_id), 0) FROM mail_changes WHERE kind = ?", (kind,)
            ).scalar()
            highest = max(highest, int(logged or 0))
        bind.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
        bind.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, highest))


def upgrade() -> None:
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("device_client_id", sa.String(length=255), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("verification_code", sa.String(length=64), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("expires", mailroom.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("types", sa.JSON(), nullable=True),
        sa.Column("created_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_push_subscriptions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
    )
    with op.batch_alter_table("push_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_push_subscriptions_user_id"), ["user_id"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_autoincrement()


def downgrade() -> None:
    # AUTOINCREMENT stays: handing ids out again is never wanted.
    with op.batch_alter_table("push_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_subscriptions_user_id"))
    op.drop_table("push_subscriptions")
