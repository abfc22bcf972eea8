"""INSERT ... ON CONFLICT for both engines (SQLite and PostgreSQL spell it the same way)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from mailroom.store.engine import Tx


def dialect_insert(dialect: str, table: Table) -> Any:
    """``INSERT`` with the dialect's ``ON CONFLICT`` support (both spell it the same way)."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def _insert(tx: Tx, table: Table) -> Any:
    return dialect_insert(tx.dialect, table)


async def insert_ignore(tx: Tx, table: Table, values: Mapping[str, Any], conflict: Sequence[str]) -> bool:
    """Insert a row unless one with the same ``conflict`` columns exists; True when inserted."""
    stmt = _insert(tx, table).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
    return await tx.rowcount(stmt) > 0


async def upsert(
    tx: Tx, table: Table, values: Mapping[str, Any], conflict: Sequence[str], update: Mapping[str, Any]
) -> None:
    """Insert a row, or update ``update`` on the existing one (which also locks it)."""
    stmt = _insert(tx, table).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_=dict(update))
    await tx.execute(stmt)
