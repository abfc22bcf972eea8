"""blobs.mime: the parsed MIME structure of each stored message

Revision ID: 0010_mime
Revises: 0014_jmap

The structure (domain/mime: every part's offsets, type, parameters, encoding, disposition,
sizes, envelopes) is a function of the blob's bytes, so it lives on the blob's row: one per
message however many mailboxes hold it. Ingest fills it in the delivering transaction.
Existing blobs are not backfilled here (a migration does not know where the blob files
are, and reading every message would make the upgrade as slow as the mailbox is big): the
first read of a blob whose structure is missing, or of an older layout version, computes
and stores it (delivery/mime.py ``structures``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_mime"
# Given as 0008_identity; this branch merged wave/jmap (for its JMAP framework), whose
# 0014_jmap also follows 0008_identity, so this one follows it to keep a single head.
down_revision = "0014_jmap"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0001_initial is regenerated from the models until the first release: it may already
    # create the column.
    if "mime" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("blobs")}:
        op.add_column("blobs", sa.Column("mime", sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE blobs DROP COLUMN mime")
