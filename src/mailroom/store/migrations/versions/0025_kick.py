"""Aliases made from the LDAP directory: aliases.directory_user

Revision ID: 0025_kick
Revises: 0027_jmapperf

LDAP provisioning (mailroom.auth.provisioning) makes aliases from the directory's further
addresses of a user; the column names that user, so that the aliases the directory no longer
lists are removed at the user's next login, and only those (an administrator's aliases have
none; one an administrator changes loses it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025_kick"
down_revision = "0027_jmapperf"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy of the table).
    op.add_column("aliases", sa.Column("directory_user", sa.String(320), nullable=True))
    op.create_index("ix_aliases_directory_user", "aliases", ["directory_user"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_aliases_directory_user", table_name="aliases")
    op.drop_column("aliases", "directory_user")
