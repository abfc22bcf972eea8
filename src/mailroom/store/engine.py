"""The database boundary: transactions for services, one implementation per engine.

Services never see SQLAlchemy: they open ``db.read()`` or ``db.write()`` and pass the
transaction to the repository functions of this package.

SQLite (the embedded default) runs statements on the event loop's thread: a primary-key
read costs microseconds, far less than a hop to a worker thread, which is what async SQLite
drivers do for every statement. The two places where SQLite can *wait* — taking the write
lock (``BEGIN IMMEDIATE``, which may wait for another process) and the commit's fsync — run
in a worker thread so the loop keeps serving. Writers in one process queue on an asyncio
lock, so they never spin on SQLite's busy handler against each other. WAL mode lets readers
run beside the writer. ``synchronous=FULL``: a commit that returned is on disk.

PostgreSQL uses SQLAlchemy's asyncio engine with asyncpg (Apache-2.0; psycopg is LGPL).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import Result, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, QueuePool
from sqlalchemy.sql import Executable

from mailroom.errors import Conflict, Unavailable

Row = dict[str, Any]


class Tx:
    """One transaction. Results are fully buffered; rows come back as plain dicts."""

    dialect: str

    async def execute(self, stmt: Executable, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> Result[Any]:
        raise NotImplementedError

    async def all(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> list[Row]:
        result = await self.execute(stmt, params)
        return [dict(r) for r in result.mappings()]

    async def first(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> Row | None:
        result = await self.execute(stmt, params)
        row = result.mappings().first()
        return dict(row) if row is not None else None

    async def scalar(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> Any:
        result = await self.execute(stmt, params)
        return result.scalar()

    async def scalars(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> list[Any]:
        result = await self.execute(stmt, params)
        return list(result.scalars())

    async def rowcount(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> int:
        result = await self.execute(stmt, params)
        return int(getattr(result, "rowcount", 0) or 0)


def _translate(exc: DBAPIError) -> Exception:
    """Foreign exceptions become domain errors at this one boundary."""
    if isinstance(exc, IntegrityError):
        return Conflict("the object conflicts with one that already exists")
    return Unavailable("the database is not available")


class _SyncTx(Tx):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = "sqlite"

    async def execute(self, stmt: Executable, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> Result[Any]:
        try:
            return self._conn.execute(stmt, params) if params is not None else self._conn.execute(stmt)  # type: ignore[arg-type]
        except DBAPIError as exc:
            raise _translate(exc) from exc


class _AsyncTx(Tx):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.dialect = conn.dialect.name

    async def execute(self, stmt: Executable, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> Result[Any]:
        try:
            if params is not None:
                return await self._conn.execute(stmt, params)  # type: ignore[arg-type]
            return await self._conn.execute(stmt)
        except DBAPIError as exc:
            raise _translate(exc) from exc


class Database:
    """What services hold: ``read()`` and ``write()`` transactions, ``ping()``, ``close()``."""

    url: str
    dialect: str

    def read(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        raise NotImplementedError

    def write(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        raise NotImplementedError

    async def ping(self) -> bool:
        try:
            async with self.read() as tx:
                await tx.scalar(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        raise NotImplementedError

    @property
    def sync_url(self) -> str:
        """The URL for tools that need it (Alembic); secrets stay inside the process."""
        return self.url


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Autocommit at the driver level: we issue BEGIN ourselves (pysqlite's implicit
    # transactions would otherwise start late and never IMMEDIATE).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        self.url = url
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"check_same_thread": False}
        self._readers: Engine = create_engine(
            url, poolclass=QueuePool, pool_size=4, max_overflow=64, pool_timeout=5, connect_args=connect_args
        )
        self._writer: Engine = create_engine(url, poolclass=QueuePool, pool_size=1, max_overflow=0, connect_args=connect_args)
        for engine in (self._readers, self._writer):
            event.listen(engine, "connect", _sqlite_on_connect)
        self._write_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        with self._readers.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            try:
                yield _SyncTx(conn)
            finally:
                conn.exec_driver_sql("ROLLBACK")

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        async with self._write_lock:
            with self._writer.connect() as conn:
                try:
                    await asyncio.to_thread(conn.exec_driver_sql, "BEGIN IMMEDIATE")
                except DBAPIError as exc:
                    raise _translate(exc) from exc
                try:
                    yield _SyncTx(conn)
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                try:
                    await asyncio.to_thread(conn.exec_driver_sql, "COMMIT")
                except DBAPIError as exc:
                    with contextlib.suppress(DBAPIError):
                        conn.exec_driver_sql("ROLLBACK")
                    raise _translate(exc) from exc

    def sync_connection(self) -> contextlib.AbstractContextManager[Connection]:
        """A plain connection for migrations and the schema check."""
        return self._writer.connect()

    async def close(self) -> None:
        self._readers.dispose()
        self._writer.dispose()


class AsyncDatabase(Database):
    """PostgreSQL (or any async SQLAlchemy dialect)."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        self._engine: AsyncEngine = create_async_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        try:
            conn_cm = self._engine.connect()
            conn = await conn_cm.__aenter__()
        except (DBAPIError, OSError) as exc:
            raise Unavailable("the database is not available") from exc
        try:
            async with conn.begin():
                yield _AsyncTx(conn)
        finally:
            await conn_cm.__aexit__(None, None, None)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        try:
            conn_cm = self._engine.connect()
            conn = await conn_cm.__aenter__()
        except (DBAPIError, OSError) as exc:
            raise Unavailable("the database is not available") from exc
        try:
            trans = await conn.begin()
            try:
                yield _AsyncTx(conn)
            except BaseException:
                await trans.rollback()
                raise
            try:
                await trans.commit()
            except DBAPIError as exc:
                raise _translate(exc) from exc
        finally:
            await conn_cm.__aexit__(None, None, None)

    async def close(self) -> None:
        await self._engine.dispose()


def open_database(url: str) -> Database:
    """SQLite URLs (``sqlite:///path``) get the in-loop engine; others the async one."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return SQLiteDatabase(url)
    if backend == "postgresql" and "+" not in url.split("://", 1)[0]:
        url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return AsyncDatabase(url)


def null_pool_engine(url: str) -> AsyncEngine:
    """A throw-away async engine (migrations on PostgreSQL)."""
    return create_async_engine(url, poolclass=NullPool)
