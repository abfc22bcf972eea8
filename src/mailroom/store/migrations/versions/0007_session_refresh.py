"""Session refresh tokens: sessions.refresh_expires_at and session_refresh_tokens

Revision ID: 0007_session_refresh
Revises: 0006_drafts

A session can be renewed without the password with a single-use refresh token
(``mail.sessions.refresh``). Every token a session was given stays (with ``used_at``) until
it expires or the session ends, so that a used one presented again is recognised and ends
the session. A nullable column is added without batch mode (recreating ``sessions`` is not
needed for that).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailroom.store.types

revision = "0007_session_refresh"
down_revision = "0006_drafts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "sessions",
        sa.Column("refresh_expires_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "session_refresh_tokens",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("session_id", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_session_refresh_tokens_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_refresh_tokens")),
    )
    with op.batch_alter_table("session_refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_refresh_tokens_session_id"), ["session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("session_refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_refresh_tokens_session_id"))
    op.drop_table("session_refresh_tokens")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("refresh_expires_at")
