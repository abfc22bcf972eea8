"""users.row_version, changed by the database on every insert and update (hand-written: triggers)

Revision ID: 0003_row_version
Revises: 0002_fulltext

The key under which a worker keeps a user's typed record (store/row_cache.py ``RowCache``;
it began as a cache of users rendered as JSON). The database maintains it, so no code path
(the admin API, a password change, mail delivery moving ``quota_bytes_used``, another
process, a hand-made UPDATE) can forget it. Random rather than +1: SQLite gives a user
created after a delete the largest id again, and a counter restarting at the same value
would repeat an (id, row_version) pair whose record another worker still holds.

SQLite: ``ADD COLUMN`` with a constant default (SQLite refuses a non-constant one), then
triggers. Not batch mode: recreating ``users`` with foreign keys on would cascade-delete
every row that refers to it. The AFTER UPDATE trigger skips updates that set the version
themselves, which is what its own UPDATE (and the AFTER INSERT trigger's) does.
PostgreSQL: a BEFORE INSERT OR UPDATE row trigger sets the new row's version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_row_version"
down_revision = "0002_fulltext"
branch_labels = None
depends_on = None


def _has_column() -> bool:
    # 0001_initial is regenerated from the models until the first release: once it is, it
    # creates the column itself and only the triggers are left for this migration.
    columns = sa.inspect(op.get_bind()).get_columns("users")
    return any(c["name"] == "row_version" for c in columns)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if not _has_column():
        op.execute("ALTER TABLE users ADD COLUMN row_version BIGINT NOT NULL DEFAULT 0")
    if postgresql:
        # A random non-negative BIGINT (62 bits: clear of the type's bounds however random()
        # rounds).
        op.execute(
            "CREATE FUNCTION users_row_version() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN NEW.row_version := floor(random() * 4611686018427387903)::bigint; RETURN NEW; END $$"
        )
        op.execute(
            "CREATE TRIGGER users_row_version BEFORE INSERT OR UPDATE ON users "
            "FOR EACH ROW EXECUTE FUNCTION users_row_version()"
        )
        op.execute("UPDATE users SET row_version = row_version")  # through the trigger: one each
        return
    op.execute("UPDATE users SET row_version = random()")
    op.execute(
        "CREATE TRIGGER users_row_version_insert AFTER INSERT ON users "
        "BEGIN UPDATE users SET row_version = random() WHERE id = NEW.id; END"
    )
    op.execute(
        "CREATE TRIGGER users_row_version_update AFTER UPDATE ON users "
        "WHEN NEW.row_version = OLD.row_version "
        "BEGIN UPDATE users SET row_version = random() WHERE id = NEW.id; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS users_row_version ON users")
        op.execute("DROP FUNCTION IF EXISTS users_row_version()")
    else:
        op.execute("DROP TRIGGER IF EXISTS users_row_version_insert")
        op.execute("DROP TRIGGER IF EXISTS users_row_version_update")
    op.execute("ALTER TABLE users DROP COLUMN row_version")
