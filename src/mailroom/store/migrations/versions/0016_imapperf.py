"""IMAP sync by MODSEQ: index email_labels (label_id, modseq)

Revision ID: 0016_imapperf
Revises: 0012_pop3

Every IMAP command ends by asking what changed in the selected mailbox since the session's
HIGHESTMODSEQ (new mail, other sessions' flags); CONDSTORE's CHANGEDSINCE and QRESYNC ask the
same. Without this index each of those read every row of the label (10,000 for a large
INBOX) to find the few above the MODSEQ.
"""

from __future__ import annotations

from alembic import op

revision = "0016_imapperf"
down_revision = "0012_pop3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_email_labels_label_id_modseq", "email_labels", ["label_id", "modseq"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_email_labels_label_id_modseq", table_name="email_labels")
