"""Schema migrations (Alembic), run by ``mailroom db upgrade`` and on first start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from mailroom.store.engine import AsyncDatabase, Database, SQLiteDatabase
from mailroom.store.fulltext import is_fulltext_table
from mailroom.store.tables import metadata

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def _with_connection(db: Database, fn: Any) -> Any:
    if isinstance(db, SQLiteDatabase):
        with db.sync_connection() as conn:
            result = fn(conn)
            conn.commit()
            return result
    if isinstance(db, AsyncDatabase):
        async with db.engine.begin() as aconn:
            return await aconn.run_sync(fn)
    raise TypeError(f"cannot migrate {type(db).__name__}")


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Schema comparison skips what migrations make by hand: the full-text tables."""
    return not (type_ == "table" and name is not None and is_fulltext_table(name))


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest)."""
    await _with_connection(db, lambda conn: command.upgrade(_config(conn), revision))


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
