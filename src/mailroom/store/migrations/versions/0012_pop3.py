"""POP3 maildrop locks: pop3_locks

Revision ID: 0012_pop3
Revises: 0011_imap

One row per user whose maildrop a POP3 session holds (RFC 1939 §8), so that a second
session, in any worker, is told ``[IN-USE]``. A lock names its session and expires on its
own if the session vanishes without releasing it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailroom.store.types

revision = "0012_pop3"
down_revision = "0011_imap"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pop3_locks",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("session", sa.String(length=32), nullable=False),
        sa.Column("expires_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pop3_locks_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_pop3_locks")),
    )


def downgrade() -> None:
    op.drop_table("pop3_locks")
