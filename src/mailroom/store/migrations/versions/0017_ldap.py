"""Users checked against an LDAP directory: users.auth_source

Revision ID: 0017_ldap
Revises: 0016_imapperf

"local" users log in with their stored password hash; "ldap" users were provisioned from the
directory (mailroom.auth.directory) and log in only there: their password is never stored.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_ldap"
down_revision = "0016_imapperf"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy): the users table's row_version triggers stay.
    op.add_column("users", sa.Column("auth_source", sa.String(16), nullable=False, server_default="local"))


def downgrade() -> None:
    op.drop_column("users", "auth_source")
