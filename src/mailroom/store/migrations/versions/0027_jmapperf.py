"""JMAP: the header fields of message blobs, for Email/query's header filter

Revision ID: 0027_jmapperf
Revises: 0021_jmap2

- ``jmap_blob_headers``: one row per header field of a message blob (name in lower case,
  decoded value case-folded), and a row with the name "" once the blob was read
  (store/jmap_headers.py). Empty here: the header filter fills it for the blobs it meets.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027_jmapperf"
down_revision = "0021_jmap2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jmap_blob_headers",
        sa.Column("sha", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=998), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha"], ["blobs.sha"], name=op.f("fk_jmap_blob_headers_sha_blobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sha", "name", "position", name=op.f("pk_jmap_blob_headers")),
    )


def downgrade() -> None:
    op.drop_table("jmap_blob_headers")
