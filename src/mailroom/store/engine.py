"""The database: :func:`open_database` picks the engine for a URL.

The store's database code is in four modules; this one is the entry point and re-exports
the names the repositories and services use:

- :mod:`.tx`: the transaction contract (``Database.read()/write()/unit_of_work()``,
  :class:`Tx`), error translation;
- :mod:`.query`: prepared statements (:class:`Query`) and their per-statement code
  generation for the SQLite driver; the one use of SQLAlchemy's private API is in
  :mod:`._sqlalchemy_internals`;
- :mod:`.sqlite`: the SQLite engine (statements on the loop, writer lock, WAL flusher);
- :mod:`.postgresql`: the PostgreSQL engine (asyncio SQLAlchemy on asyncpg).
"""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from mailroom.store.postgresql import AsyncDatabase
from mailroom.store.query import Query, Row
from mailroom.store.sqlite import SQLiteDatabase
from mailroom.store.tx import Database, Params, Statement, Tx, UnitOfWork, out_of_range

__all__ = [
    "AsyncDatabase",
    "Database",
    "Params",
    "Query",
    "Row",
    "SQLiteDatabase",
    "Statement",
    "Tx",
    "UnitOfWork",
    "null_pool_engine",
    "open_database",
    "out_of_range",
]


def open_database(url: str, *, durable_commits: str = "all", commit_flush_ms: int = 50) -> Database:
    """SQLite URLs (``sqlite:///path``) get the in-loop engine; others the async one.

    ``durable_commits``: ``all`` (every commit waits for the disk; the default for tools)
    or ``mail`` (only ``write(durable=True)`` waits; see the module docstring).
    """
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return SQLiteDatabase(url, durable_commits=durable_commits, commit_flush_ms=commit_flush_ms)
    if backend == "postgresql" and "+" not in url.split("://", 1)[0]:
        url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return AsyncDatabase(url, durable_commits=durable_commits)


def null_pool_engine(url: str) -> AsyncEngine:
    """A throw-away async engine (migrations on PostgreSQL)."""
    return create_async_engine(url, poolclass=NullPool)
