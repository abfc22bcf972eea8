"""IMAP subscriptions: imap_subscriptions

Revision ID: 0020_imapsubs
Revises: 0016_imapperf

SUBSCRIBE/UNSUBSCRIBE/LSUB and LIST (SUBSCRIBED) stored per user (store/imap_schema.py):
mailboxes are subscribed unless unsubscribed; a row records an unsubscribed mailbox or a
subscribed name that has no mailbox. JMAP's Mailbox/isSubscribed reads the same rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_imapsubs"
down_revision = "0016_imapperf"
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


def downgrade() -> None:
    op.drop_table("imap_subscriptions")
