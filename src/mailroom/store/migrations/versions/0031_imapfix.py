"""IMAP: keywords keep the case first used

Revision ID: 0031_imapfix
Revises: 0033_jmapfix

- ``keyword_names``: per account, the spelling a mixed-case keyword was first stored with
  (``$Label1``), by its stored lower-case form (``email_keywords.keyword``, JMAP's form).
  IMAP shows that spelling (RFC 9051 §2.3.2: keywords compare without regard to case, a
  client reads back what it stored); JMAP keeps showing lower case (RFC 8621 §4.1.1).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031_imapfix"
down_revision = "0033_jmapfix"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keyword_names",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("keyword", sa.String(length=64), nullable=False),
        sa.Column("shown", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_keyword_names_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "keyword", name=op.f("pk_keyword_names")),
    )


def downgrade() -> None:
    op.drop_table("keyword_names")
