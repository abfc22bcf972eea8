"""The SQLite engine (the embedded default).

SQLite runs statements on the event loop's thread: a primary-key read costs microseconds,
far less than a hop to a worker thread, which is what async SQLite drivers do for every
statement. The two places where SQLite can *wait* — taking the write lock (``BEGIN
IMMEDIATE``, which may wait for another process) and the commit's fsync — run in a worker
thread so the loop keeps serving. Writers in one process queue on an asyncio lock, so they
never spin on SQLite's busy handler against each other. WAL mode lets readers run beside the
writer. Prepared statements (:class:`.query.Query`) go straight to the driver.

Deferred commits (``durable_commits="mail"``): the writer runs with ``synchronous=NORMAL``
and a flush task fsyncs the WAL within ``commit_flush_ms`` (the WAL is a log: fsyncing it
makes every earlier commit durable too); a durable write fsyncs before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import Result, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import QueuePool

from mailroom.errors import Unavailable
from mailroom.store.query import Query, Row
from mailroom.store.tx import Database, Params, Statement, Tx, json_dumps, out_of_range, translate

log = logging.getLogger(__name__)


def _translate_driver(exc: sqlite3.Error | OverflowError) -> Exception:
    """A driver error from the fast path: as :func:`translate` does for SQLAlchemy's."""
    if isinstance(exc, OverflowError):
        return out_of_range()
    if isinstance(exc, sqlite3.IntegrityError):
        return translate(IntegrityError(None, None, exc))
    return Unavailable("the database is not available")


class _SyncTx(Tx):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._dialect = conn.dialect
        self.dialect = "sqlite"

    async def execute(self, stmt: Statement, params: Params = None) -> Result[Any]:
        if isinstance(stmt, Query):
            stmt = stmt.stmt
        try:
            return self._conn.execute(stmt, params) if params is not None else self._conn.execute(stmt)
        except DBAPIError as exc:
            raise translate(exc) from exc
        except OverflowError as exc:  # sqlite3 binding an int beyond 64 bits
            raise out_of_range() from exc

    async def all(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        if isinstance(stmt, Query):
            try:
                return stmt.sqlite(self._dialect).rows(self._conn.connection.dbapi_connection, params)
            except (sqlite3.Error, OverflowError) as exc:
                raise _translate_driver(exc) from exc
        return await super().all(stmt, params)

    async def scalars(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> list[Any]:
        if isinstance(stmt, Query):
            try:
                return stmt.sqlite(self._dialect).first_column(self._conn.connection.dbapi_connection, params)
            except (sqlite3.Error, OverflowError) as exc:
                raise _translate_driver(exc) from exc
        return await super().scalars(stmt, params)

    async def tuples(self, query: Query, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return query.sqlite(self._dialect).tuples(self._conn.connection.dbapi_connection, params)
        except (sqlite3.Error, OverflowError) as exc:
            raise _translate_driver(exc) from exc

    async def run(self, query: Query, params: Mapping[str, Any] | None = None) -> int:
        try:
            return query.sqlite(self._dialect).run(self._conn.connection.dbapi_connection, params)
        except (sqlite3.Error, OverflowError) as exc:
            raise _translate_driver(exc) from exc


#: How long a writer waits for another process's write lock (in a worker thread).
BUSY_TIMEOUT_MS = 10000


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Autocommit at the driver level: we issue BEGIN ourselves (pysqlite's implicit
    # transactions would otherwise start late and never IMMEDIATE).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # The writer lowers this to NORMAL when commits may be deferred (SQLiteDatabase).
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.close()


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


async def _driver_call(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking driver call in a worker thread, and never leave it behind.

    A cancelled ``await asyncio.to_thread(...)`` returns at once while the thread goes on
    using the connection; the caller would then release (or, at shutdown, close) a
    connection SQLite is still writing with — a crash in C. So a cancellation waits for the
    call to finish, then is passed on.
    """
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


def _with_busy_timeout(raw: sqlite3.Connection, sql: str) -> None:
    """Run ``sql`` willing to wait for other processes' locks (in a worker thread)."""
    raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        raw.execute(sql)
    finally:
        raw.execute("PRAGMA busy_timeout=0")


def _writer_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=0")
    cur.close()


def _deferring_writer_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    # Its commits run on the event loop: an automatic checkpoint (fsyncs) must not run
    # inside one. The flush task checkpoints in its thread instead.
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


#: How often, at most, the flush task checkpoints the WAL into the database file.
CHECKPOINT_EVERY_SECONDS = 1.0


def _sync_file(path: str) -> None:
    """fdatasync a file by name: the kernel flushes the inode whichever descriptor wrote it.

    A missing WAL file was checkpointed into the database and removed; with
    ``synchronous=NORMAL`` SQLite syncs the database after every checkpoint.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _commit_and_sync(raw: sqlite3.Connection, wal: str) -> None:
    _with_busy_timeout(raw, "COMMIT")
    _sync_file(wal)


class _Flusher:
    """The flush task's work, in a worker thread: fsync the WAL; now and then checkpoint it.

    The checkpoint is PASSIVE (it never waits for readers or writers) and runs on a
    connection of its own; another process's checkpoint at the same moment makes it a no-op.
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self.wal = f"{database}-wal"
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._checkpointed = time.monotonic()

    def __call__(self, sync: bool) -> None:
        with self._lock:
            if sync:
                _sync_file(self.wal)
            if time.monotonic() - self._checkpointed >= CHECKPOINT_EVERY_SECONDS:
                self._checkpointed = time.monotonic()
                if self._conn is None:
                    self._conn = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class _SQLiteRead(contextlib.AbstractAsyncContextManager[Tx]):
    """A read on a free reader connection (a class, not a generator: reads are the hot path)."""

    __slots__ = ("conn", "db")

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db
        self.conn: Connection | None = None

    async def __aenter__(self) -> Tx:
        free = self.db._free_readers
        self.conn = free.pop() if free else self.db._readers.connect()
        return _SyncTx(self.conn)

    async def __aexit__(self, *exc: object) -> None:
        conn = self.conn
        assert conn is not None
        raw = conn.connection.dbapi_connection
        if raw is not None and raw.in_transaction:
            raw.execute("ROLLBACK")
        if len(self.db._free_readers) < 8:
            self.db._free_readers.append(conn)
        else:
            conn.close()


class _SQLiteWrite(contextlib.AbstractAsyncContextManager[Tx]):
    """A write transaction on the held writer connection, in turn with the process's other writers.

    BEGIN, COMMIT and ROLLBACK go straight to the driver, as prepared statements do
    (``Tx.run``): SQLAlchemy's execution context costs more than a COMMIT that only hands
    the WAL's pages to the OS. Its own transaction state is unused (the driver is in
    autocommit mode and we issue BEGIN ourselves).
    """

    __slots__ = ("db", "raw", "tx")

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db
        self.raw: sqlite3.Connection | None = None
        self.tx: Tx | None = None

    async def __aenter__(self) -> Tx:
        db = self.db
        await db._write_lock.acquire()
        try:
            conn = db._held
            if conn is None or conn.invalidated or conn.closed:
                conn = db._held = db._writer.connect()
            raw: sqlite3.Connection = conn.connection.dbapi_connection  # type: ignore[assignment]
            # The writer connection has no busy timeout: taking the write lock is tried
            # on the loop, which costs nothing when no other process holds it; only when
            # one does do we wait for it, in a thread, with the timeout on.
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    raise _translate_driver(exc) from exc
                try:
                    await _driver_call(_with_busy_timeout, raw, "BEGIN IMMEDIATE")
                except sqlite3.Error as exc2:
                    raise _translate_driver(exc2) from exc2
                except BaseException:
                    # Cancelled while the thread waited: the BEGIN may have gone through
                    # since, and an open transaction would refuse every later BEGIN.
                    if raw.in_transaction:
                        raw.execute("ROLLBACK")
                    raise
        except BaseException:
            db._write_lock.release()
            raise
        self.raw = raw
        self.tx = _SyncTx(conn)
        return self.tx

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        raw, tx = self.raw, self.tx
        if raw is None or tx is None:
            return  # never begun
        try:
            if exc_type is not None:
                # SQLite has already rolled back after some errors (a full disk): the
                # error that did it is the one to pass on.
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                return
            await self.db._commit(raw, tx)
        finally:
            self.db._write_lock.release()


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, url: str, *, durable_commits: str = "all", commit_flush_ms: int = 50) -> None:
        self.url = url
        database = make_url(url).database
        on_disk = database not in (None, "", ":memory:")
        if database and on_disk:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Deferred commits need a WAL file to flush; an in-memory database has nothing to lose.
        # None: every commit is durable (synchronous=FULL).
        self._flusher = _Flusher(database) if database and on_disk and durable_commits == "mail" else None
        # The one writer connection, kept checked out: writes are serialised by the lock
        # below, and a pool checkout per write costs more than an alias insert.
        self._held: Connection | None = None
        self._flush_delay = commit_flush_ms / 1000
        self._flush_handle: asyncio.TimerHandle | None = None
        self._dirty = False  # deferred commits not yet fsynced
        self._flushes: set[asyncio.Future[None]] = set()
        common: dict[str, Any] = {
            "connect_args": {"check_same_thread": False},
            "json_serializer": json_dumps,
            "json_deserializer": orjson.loads,
        }
        self._readers: Engine = create_engine(
            url, poolclass=QueuePool, pool_size=4, max_overflow=64, pool_timeout=5, **common
        )
        self._writer: Engine = create_engine(url, poolclass=QueuePool, pool_size=1, max_overflow=0, **common)
        for engine in (self._readers, self._writer):
            event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(self._writer, "connect", _writer_on_connect)
        if self._flusher is not None:
            event.listen(self._writer, "connect", _deferring_writer_on_connect)
        self._write_lock = asyncio.Lock()
        self._free_readers: list[Connection] = []

    def _read(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        # Each statement of a read is its own snapshot, as under PostgreSQL's default READ
        # COMMITTED: so both engines behave alike, and SQLite saves a BEGIN and a ROLLBACK
        # per read. Reader connections are kept in a free list of our own: the pool's
        # checkout and reset cost more than the primary-key reads they serve.
        return _SQLiteRead(self)

    def _write(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        return _SQLiteWrite(self)

    async def _commit(self, raw: sqlite3.Connection, tx: Tx) -> None:
        try:
            if self._flusher is None:
                # synchronous=FULL: the commit's fsync runs in a thread so the
                # loop keeps serving.
                await _driver_call(_with_busy_timeout, raw, "COMMIT")
            elif tx.durable:
                await _driver_call(_commit_and_sync, raw, self._flusher.wal)
                # That fsync of the WAL covered every deferred commit before this one too.
                self._dirty = False
                self._flush_later()  # for the checkpoint
            else:
                # synchronous=NORMAL and no automatic checkpoint: the commit only
                # writes the WAL's pages to the OS, microseconds; no thread hop.
                raw.execute("COMMIT")
                self._dirty = True
                self._flush_later()
        except sqlite3.Error as exc:
            if raw.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    raw.execute("ROLLBACK")
            raise _translate_driver(exc) from exc

    def _flush_later(self) -> None:
        """Have the WAL fsynced within ``commit_flush_ms`` (one flush covers every commit before it)."""
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self._flush_delay, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        assert self._flusher is not None
        sync, self._dirty = self._dirty, False
        task = asyncio.ensure_future(asyncio.to_thread(self._flusher, sync))
        self._flushes.add(task)
        task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Future[None]) -> None:
        self._flushes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("flushing the database's WAL to disk failed: %s", task.exception())
            # Try again: the commits since the last good flush are not on disk yet.
            self._dirty = True
            self._flush_later()

    async def flush(self) -> None:
        """Put every commit made so far on disk (tests, shutdown)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._flushes:
            await asyncio.wait(list(self._flushes))
        if self._flusher is not None:
            # Covers every commit so far: the flush task need not fsync them again (a commit
            # made while this fsync runs marks the database dirty again).
            self._dirty = False
            try:
                await asyncio.to_thread(_sync_file, self._flusher.wal)
            except BaseException:
                self._dirty = True
                raise

    def sync_connection(self) -> contextlib.AbstractContextManager[Connection]:
        """A plain connection for migrations and the schema check (the writer's own)."""
        if self._write_lock.locked():
            raise RuntimeError("sync_connection() while a write transaction is open")
        self._release_writer()
        return self._writer.connect()

    def _release_writer(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    async def close(self) -> None:
        await self.flush()
        async with self._write_lock:
            self._release_writer()
        if self._flusher is not None:
            self._flusher.close()
        for conn in self._free_readers:
            conn.close()
        self._free_readers.clear()
        self._readers.dispose()
        self._writer.dispose()
