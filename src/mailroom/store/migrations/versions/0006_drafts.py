"""emails.version (drafts edited with optimistic concurrency) and emails.trace (trace headers)

Revision ID: 0006_drafts
Revises: 0005_changelog

``version`` starts at 1 and grows by one each time a draft is edited (PATCH /emails/{id}):
the ETag / ``if_version`` a client sends back so two tabs do not overwrite each other.
``trace`` holds the ``Return-Path``, ``Delivered-To`` and ``Received`` lines ingest puts in
front of the stored message for that mailbox (delivery/trace.py); null for mail stored
before this revision and for mail that gets none (drafts, imports, the sender's copy).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_drafts"
down_revision = "0005_changelog"
branch_labels = None
depends_on = None


def _columns() -> set[str]:
    # 0001_initial is regenerated from the models until the first release: it may already
    # create these columns.
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("emails")}


def upgrade() -> None:
    present = _columns()
    if "version" not in present:
        op.add_column("emails", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    if "trace" not in present:
        op.add_column("emails", sa.Column("trace", sa.Text(), nullable=True))


def downgrade() -> None:
    # Not batch mode: recreating emails on SQLite would cascade-delete its labels.
    op.execute("ALTER TABLE emails DROP COLUMN trace")
    op.execute("ALTER TABLE emails DROP COLUMN version")
