"""Second factors and app passwords: user_totp, totp_recovery_codes, app_passwords

Revision ID: 0008_identity
Revises: 0007_session_refresh

TOTP secrets are stored encrypted (auth/totp.py), recovery codes and app passwords as
SHA-256 digests. Only new tables: nothing existing is rewritten.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailroom.store.types

revision = "0008_identity"
# The branch's base was 0003_row_version; 0007_session_refresh (merged before this branch
# began) also starts there, so this one follows it to keep a single head.
down_revision = "0007_session_refresh"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_totp",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_encrypted", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_totp_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_totp")),
    )
    op.create_table(
        "totp_recovery_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("used_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_totp_recovery_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_totp_recovery_codes")),
    )
    with op.batch_alter_table("totp_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_totp_recovery_codes_user_id"), ["user_id"], unique=False)
    op.create_table(
        "app_passwords",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("protocols", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_app_passwords_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_passwords")),
    )
    with op.batch_alter_table("app_passwords", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_passwords_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("app_passwords", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_passwords_user_id"))
    op.drop_table("app_passwords")
    with op.batch_alter_table("totp_recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_totp_recovery_codes_user_id"))
    op.drop_table("totp_recovery_codes")
    op.drop_table("user_totp")
