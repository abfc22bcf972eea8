"""IMAP subscriptions and the \\Recent mark: imap_subscriptions, imap_recent

Revision ID: 0020_imapsubs
Revises: 0019_keys

SUBSCRIBE/UNSUBSCRIBE/LSUB and LIST (SUBSCRIBED) stored per user (store/imap_schema.py):
mailboxes are subscribed unless unsubscribed; a row records an unsubscribed mailbox or a
subscribed name that has no mailbox. JMAP's Mailbox/isSubscribed reads the same rows.
imap_recent keeps, per label, the first UID no IMAP4rev1 session has been told of (RFC 3501
§2.3.2: a message is recent in one session).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_imapsubs"
down_revision = "0019_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_subscriptions",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_imap_subscriptions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "name", name=op.f("pk_imap_subscriptions")),
    )

    op.create_table(
        "imap_recent",
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("first_uid", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["label_id"], ["labels.id"], name=op.f("fk_imap_recent_label_id_labels"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("label_id", name=op.f("pk_imap_recent")),
    )


def downgrade() -> None:
    op.drop_table("imap_recent")
    op.drop_table("imap_subscriptions")
