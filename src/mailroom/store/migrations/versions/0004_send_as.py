"""send-as identities: addresses a user may send as beyond their own and their aliases'

Revision ID: 0004_send_as
Revises: 0003_row_version

One row per (user, address), deleted with its user. The sender rule (delivery/senders.py)
reads it by primary key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailroom.store.types

revision = "0004_send_as"
down_revision = "0003_row_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0001_initial is regenerated from the models until the first release: once it is, it
    # creates the table itself.
    if "send_as" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "send_as",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("created_at", mailroom.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_send_as_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "address", name=op.f("pk_send_as")),
    )


def downgrade() -> None:
    op.drop_table("send_as")
