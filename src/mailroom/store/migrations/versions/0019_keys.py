"""Key server: several keys per address with their source, mailed confirmations, votes

Revision ID: 0019_keys
Revises: 0017_ldap

``public_keys.user_id`` becomes optional (keys uploaded for external addresses have no local
owner); ``key_listings`` says for which addresses the directory lists a key and where each
listing came from (every existing key: its owner's address, ``owner``);
``key_confirmations`` holds the hashed single-use tokens of the confirmation links mailed for
uploads naming a local address; ``key_votes`` the users' votes on user-sourced keys.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailroom.store.types

revision = "0019_keys"
down_revision = "0017_ldap"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("public_keys", schema=None) as batch_op:
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=True)
    op.create_table(
        "key_listings",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("listed_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["fingerprint"], ["public_keys.fingerprint"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("fingerprint", "email"),
    )
    op.create_index("ix_key_listings_email", "key_listings", ["email"], unique=False)
    op.create_index("ix_key_listings_user_id", "key_listings", ["user_id"], unique=False)
    op.execute(
        "INSERT INTO key_listings (fingerprint, email, source, user_id, listed_at) "
        "SELECT fingerprint, email, 'owner', user_id, published_at FROM public_keys"
    )
    op.create_table(
        "key_confirmations",
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("armored", sa.Text(), nullable=False),
        sa.Column("created_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_digest"),
    )
    op.create_index("ix_key_confirmations_user_id", "key_confirmations", ["user_id"], unique=False)
    op.create_index(
        "ix_key_confirmations_email_fingerprint", "key_confirmations", ["email", "fingerprint"], unique=False
    )
    op.create_table(
        "key_votes",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("authentic", sa.Boolean(), nullable=False),
        sa.Column("voted_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["fingerprint"], ["public_keys.fingerprint"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("fingerprint", "user_id"),
    )
    op.create_index("ix_key_votes_user_id", "key_votes", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_key_votes_user_id", table_name="key_votes")
    op.drop_table("key_votes")
    op.drop_index("ix_key_confirmations_email_fingerprint", table_name="key_confirmations")
    op.drop_index("ix_key_confirmations_user_id", table_name="key_confirmations")
    op.drop_table("key_confirmations")
    op.drop_index("ix_key_listings_user_id", table_name="key_listings")
    op.drop_index("ix_key_listings_email", table_name="key_listings")
    op.drop_table("key_listings")
    op.execute("DELETE FROM public_keys WHERE user_id IS NULL")
    with op.batch_alter_table("public_keys", schema=None) as batch_op:
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=False)
