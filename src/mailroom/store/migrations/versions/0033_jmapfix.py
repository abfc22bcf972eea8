"""JMAP: the header filter's per-account mark

Revision ID: 0033_jmapfix
Revises: 0022_jmap3

- ``jmap_header_marks``: per account, the change-log state up to which every email created
  has its header fields in ``jmap_blob_headers`` (store/jmap_headers.py), so Email/query's
  ``header`` filter checks only the emails created since. Empty here: the first header
  query of an account checks all its emails, as before, and sets it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033_jmapfix"
down_revision = "0022_jmap3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jmap_header_marks",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_jmap_header_marks_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_jmap_header_marks")),
    )


def downgrade() -> None:
    op.drop_table("jmap_header_marks")
