"""JMAP: push subscriptions; ids that are never handed out twice on SQLite

Revision ID: 0014_jmap
Revises: 0008_identity

- ``push_subscriptions``: RFC 8620 §7.2 PushSubscription objects.
- JMAP ids must never name a second object. Without ``AUTOINCREMENT`` SQLite hands out the
  highest id again once its row is deleted, so ``users``, ``labels``, ``threads`` and
  ``emails`` (the rows behind account, Mailbox, Thread and Email ids) get it. Each table is
  rebuilt the way SQLite documents for schema changes ALTER TABLE cannot make (the "12
  steps"): with foreign keys off, in one transaction, a copy with the new definition is
  filled from the table (same ids: an ``INTEGER PRIMARY KEY`` is the rowid), the table is
  dropped, the copy renamed, its indexes and triggers made again, and ``foreign_key_check``
  must find nothing. (The first version edited ``sqlite_master`` under ``writable_schema``,
  which SQLite's defensive mode refuses; databases migrated that way have the same schema.)
  Each table's sequence starts at the highest id it ever had: its rows, and the change
  log's, which remembers deleted ones. PostgreSQL's sequences never go back: nothing to do
  there.
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


def _rebuild(bind: sa.Connection, table: str) -> None:
    """Give ``table`` AUTOINCREMENT by rebuilding it (foreign keys are off, a transaction is open)."""
    found = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    sql = str(found.scalar())
    if "AUTOINCREMENT" in sql:
        return
    # Indexes (but the automatic ones of UNIQUE constraints, which the definition remakes)
    # and triggers go with the table when it is dropped: keep them to make them again.
    dependants = [
        str(row[0])
        for row in bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
            "AND sql IS NOT NULL ORDER BY type, name",
            (table,),
        )
    ]
    scratch = f"_jmap_rebuild_{table}"
    header = re.match(rf'CREATE TABLE "?{table}"? \(', sql)
    if header is None:
        raise RuntimeError(f"unexpected definition of table {table}: {sql[:200]}")
    definition = f'CREATE TABLE "{scratch}" (' + _autoincrement_sql(table, sql)[header.end() :]
    bind.exec_driver_sql(definition)
    bind.exec_driver_sql(f'INSERT INTO "{scratch}" SELECT * FROM "{table}"')  # noqa: S608
    bind.exec_driver_sql(f'DROP TABLE "{table}"')
    bind.exec_driver_sql(f'ALTER TABLE "{scratch}" RENAME TO "{table}"')
    for statement in dependants:
        bind.exec_driver_sql(statement)


def _sqlite_autoincrement() -> None:
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    if raw is None or raw.in_transaction:
        # PRAGMA foreign_keys is a no-op inside a transaction, and dropping a table with
        # foreign keys on would delete every row that refers to it (ON DELETE CASCADE).
        raise RuntimeError("0014_jmap must run outside a transaction (mailroom's migration connection)")
    foreign_keys = int(bind.exec_driver_sql("PRAGMA foreign_keys").scalar() or 0)
    bind.exec_driver_sql("PRAGMA foreign_keys = OFF")
    # The renames below must not rewrite (nor check) the triggers of other tables that name
    # the table being rebuilt: it is missing for a moment, and comes back under that name.
    bind.exec_driver_sql("PRAGMA legacy_alter_table = ON")
    try:
        bind.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            for table in _TABLES:
                _rebuild(bind, table)
            broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:5]}")
            for table, kind in _TABLES.items():
                highest = int(bind.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar() or 0)  # noqa: S608
                if kind is not None:
                    logged = bind.exec_driver_sql(
                        "SELECT coalesce(max(object_id), 0) FROM mail_changes WHERE kind = ?", (kind,)
                    ).scalar()
                    highest = max(highest, int(logged or 0))
                bind.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
                bind.exec_driver_sql(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, highest)
                )
        except BaseException:
            bind.exec_driver_sql("ROLLBACK")
            raise
        bind.exec_driver_sql("COMMIT")
    finally:
        bind.exec_driver_sql("PRAGMA legacy_alter_table = OFF")
        bind.exec_driver_sql(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")


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
