"""Schema migrations (Alembic), run by ``mailroom db upgrade`` and on first start."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, make_url, text

from mailroom.store.engine import AsyncDatabase, Database, SQLiteDatabase
from mailroom.store.fulltext import is_fulltext_table
from mailroom.store.tables import metadata

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


#: The PostgreSQL advisory lock that serialises migrations (any constant of our own).
MIGRATION_LOCK = 0x6D61696C726F6F6D  # "mailroom"


@contextlib.contextmanager
def _sqlite_lock(db: SQLiteDatabase) -> Iterator[None]:
    """Hold a lock file beside the database: processes starting at once (``serve``'s workers,
    a second server, ``mailroom db upgrade``) migrate one after the other, and the later ones
    find the schema done. SQLite runs DDL outside a transaction, so without this two of them
    could both see an old revision and both create its tables."""
    database = make_url(db.url).database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def _with_connection(db: Database, fn: Any, *, exclusive: bool = False) -> Any:
    if isinstance(db, SQLiteDatabase):
        with _sqlite_lock(db) if exclusive else contextlib.nullcontext(), db.sync_connection() as conn:
            result = fn(conn)
            conn.commit()
            return result
    if isinstance(db, AsyncDatabase):
        async with db.engine.begin() as aconn:
            if exclusive and db.dialect == "postgresql":
                # Held to the end of this transaction, which is the migration's own.
                await aconn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            return await aconn.run_sync(fn)
    raise TypeError(f"cannot migrate {type(db).__name__}")


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Schema comparison skips what migrations make by hand: the full-text tables."""
    return not (type_ == "table" and name is not None and is_fulltext_table(name))


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest)."""
    await _with_connection(db, lambda conn: command.upgrade(_config(conn), revision), exclusive=True)


async def current_revision(db: Database) -> str | None:
    def read(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    rev: str | None = await _with_connection(db, read)
    return rev


async def differences(db: Database) -> list[Any]:
    """What the database lacks compared with the models (empty when they match)."""

    def compare(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
        return list(compare_metadata(ctx, metadata))

    diff: list[Any] = await _with_connection(db, compare)
    return diff


def revision(db_connection: Connection, message: str, rev_id: str) -> None:
    """Developer tool: autogenerate a migration against an up-to-date database."""
    command.revision(_config(db_connection), message=message, autogenerate=True, rev_id=rev_id)
