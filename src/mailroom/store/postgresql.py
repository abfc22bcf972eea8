"""The PostgreSQL engine: SQLAlchemy's asyncio engine with asyncpg (Apache-2.0; psycopg is
LGPL).

Deferred commits (``durable_commits="mail"``): connections commit with
``synchronous_commit=off`` (flushed by PostgreSQL's WAL writer within 3 ×
``wal_writer_delay``); a durable write turns it back on for its own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from sqlalchemy.engine import Result, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from mailroom.errors import Unavailable
from mailroom.store.query import Query
from mailroom.store.tx import Database, Params, Statement, Tx, json_dumps, translate


class _AsyncTx(Tx):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self.dialect = conn.dialect.name

    async def execute(self, stmt: Statement, params: Params = None) -> Result[Any]:
        if isinstance(stmt, Query):
            stmt = stmt.stmt
        try:
            if params is not None:
                return await self._conn.execute(stmt, params)
            return await self._conn.execute(stmt)
        except DBAPIError as exc:
            raise translate(exc) from exc


class AsyncDatabase(Database):
    """PostgreSQL (or any async SQLAlchemy dialect)."""

    def __init__(self, url: str, *, pool_size: int = 10, durable_commits: str = "all") -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        # With deferred commits, connections commit asynchronously by default and a durable
        # write turns synchronous_commit back on for its own transaction.
        self._deferred = durable_commits == "mail" and self.dialect == "postgresql"
        connect_args: dict[str, Any] = {}
        if self._deferred:
            connect_args["server_settings"] = {"synchronous_commit": "off"}
        self._engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=20,
            pool_pre_ping=True,
            json_serializer=json_dumps,
            json_deserializer=orjson.loads,
            connect_args=connect_args,
        )
        self._open: set[AsyncConnection] = set()
        self._releases: set[asyncio.Future[Any]] = set()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def _acquire(self) -> tuple[Any, AsyncConnection]:
        try:
            conn_cm = self._engine.connect()
            conn = await conn_cm.__aenter__()
        except (DBAPIError, OSError) as exc:
            raise Unavailable("the database is not available") from exc
        self._open.add(conn)
        return conn_cm, conn

    async def _release(self, conn_cm: Any, conn: AsyncConnection) -> None:
        # Shielded: a task cancelled while giving its connection back (at shutdown, say)
        # must still give it back, or the pool leaks it.
        release = asyncio.ensure_future(conn_cm.__aexit__(None, None, None))
        release.add_done_callback(lambda _: self._open.discard(conn))
        self._releases.add(release)
        release.add_done_callback(self._releases.discard)
        await asyncio.shield(release)

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[Tx]:
        conn_cm, conn = await self._acquire()
        try:
            async with conn.begin():
                yield _AsyncTx(conn)
        finally:
            await self._release(conn_cm, conn)

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[Tx]:
        conn_cm, conn = await self._acquire()
        try:
            trans = await conn.begin()
            tx = _AsyncTx(conn)
            try:
                yield tx
                if tx.durable and self._deferred:
                    await conn.exec_driver_sql("SET LOCAL synchronous_commit TO on")
            except BaseException:
                await trans.rollback()
                raise
            try:
                await trans.commit()
            except DBAPIError as exc:
                raise translate(exc) from exc
        finally:
            await self._release(conn_cm, conn)

    async def close(self) -> None:
        """Let pending releases finish, close connections still out, then the pool."""
        if self._releases:
            await asyncio.wait(list(self._releases), timeout=5)
        for conn in list(self._open):
            with contextlib.suppress(Exception):
                await conn.close()
        self._open.clear()
        await self._engine.dispose()
