"""JMAP: states for Identity and EmailSubmission; identities' replyTo, bcc and signatures

Revision ID: 0021_jmap2
Revises: 0020_imapsubs

- ``jmap_type_states`` and ``jmap_objects_seen``: a counter per account and type, and the
  objects last seen with a digest each, so ``Identity/changes`` and
  ``EmailSubmission/changes`` answer from a state (store/jmap_states.py).
- ``jmap_identities``: ``replyTo``, ``bcc``, ``textSignature``, ``htmlSignature`` of an
  identity (RFC 8621 §6), per user and address.
- ``jmap_mailboxes``: a mailbox's ``sortOrder`` when the user set one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_jmap2"
down_revision = "0020_imapsubs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jmap_type_states",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_jmap_type_states_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "kind", name=op.f("pk_jmap_type_states")),
    )
    op.create_table(
        "jmap_objects_seen",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("changed", sa.BigInteger(), nullable=False),
        sa.Column("destroyed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_jmap_objects_seen_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "kind", "object_id", name=op.f("pk_jmap_objects_seen")),
    )
    op.create_table(
        "jmap_identities",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reply_to", sa.JSON(), nullable=True),
        sa.Column("bcc", sa.JSON(), nullable=True),
        sa.Column("text_signature", sa.Text(), nullable=False),
        sa.Column("html_signature", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_jmap_identities_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "address", name=op.f("pk_jmap_identities")),
    )
    op.create_table(
        "jmap_mailboxes",
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("sort_order", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["label_id"], ["labels.id"], name=op.f("fk_jmap_mailboxes_label_id_labels"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_jmap_mailboxes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("label_id", name=op.f("pk_jmap_mailboxes")),
    )
    with op.batch_alter_table("jmap_mailboxes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jmap_mailboxes_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jmap_mailboxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jmap_mailboxes_user_id"))
    op.drop_table("jmap_mailboxes")
    op.drop_table("jmap_identities")
    op.drop_table("jmap_objects_seen")
    op.drop_table("jmap_type_states")
