"""The database boundary: transactions for services, one implementation per engine.

Services never see SQLAlchemy: they open ``db.read()`` or ``db.write()`` and pass the
transaction to the repository functions of this package.

SQLite (the embedded default) runs statements on the event loop's thread: a primary-key
read costs microseconds, far less than a hop to a worker thread, which is what async SQLite
drivers do for every statement. The two places where SQLite can *wait* — taking the write
lock (``BEGIN IMMEDIATE``, which may wait for another process) and the commit's fsync — run
in a worker thread so the loop keeps serving. Writers in one process queue on an asyncio
lock, so they never spin on SQLite's busy handler against each other. WAL mode lets readers
run beside the writer.

Durability (setting ``durable_commits``). A ``write(durable=True)`` returns only once its
commit is on disk: ingest and the outbound queue use it, because their commit is a promise
to another server (a 250 reply). Other writes — admin changes, client settings — by default
do not wait for the disk: SQLite runs with ``synchronous=NORMAL`` and a flush task fsyncs
the WAL within ``commit_flush_ms``; on PostgreSQL they commit with ``synchronous_commit=off``
(flushed by its WAL writer within 3 × ``wal_writer_delay``). A power loss (not a crash of
the process: the OS still holds the data) may lose the last of them, never corrupt or
reorder anything: the WAL is a log, and fsyncing it makes every earlier commit durable too.
``durable_commits="all"`` makes every commit wait (``synchronous=FULL``).

PostgreSQL uses SQLAlchemy's asyncio engine with asyncpg (Apache-2.0; psycopg is LGPL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Connection, Date, Engine, create_engine, event, text
from sqlalchemy.engine import Result, make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, QueuePool
from sqlalchemy.sql import Executable

from mailroom.errors import Conflict, FieldError, InternalError, InvalidParams, Unavailable
from mailroom.store.types import UTCDateTime, parse_sqlite_utc, sqlite_utc_text

log = logging.getLogger(__name__)

Row = dict[str, Any]
Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


class Query:
    """A statement built once (at import) with ``bindparam`` placeholders, run many times.

    Hot read paths (authentication, get-by-key, thread lists) use these: SQLAlchemy then
    compiles nothing per call, and on SQLite the compiled SQL runs straight on the driver
    with SQLAlchemy's own type processors (about 3x faster than ``Connection.execute``
    with a statement built per call, measured in store/engine.py's docs).
    """

    __slots__ = ("_sqlite", "stmt")

    def __init__(self, stmt: Executable) -> None:
        self.stmt = stmt
        self._sqlite: _CompiledQuery | None = None

    def sqlite(self, dialect: Any) -> _CompiledQuery:
        if self._sqlite is None:
            self._sqlite = _CompiledQuery(self.stmt, dialect)
        return self._sqlite


class _CompiledQuery:
    """SQL text, parameter order and type processors for the SQLite driver."""

    __slots__ = ("_args", "build", "columns", "converters", "sql")

    def __init__(self, stmt: Executable, dialect: Any) -> None:
        compiled: Any = stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.sql: str = compiled.string
        processors: dict[str, Any] = {
            name: _bind_converter(bp.type, compiled._bind_processors.get(name))
            for name, bp in compiled.binds.items()
        }
        defaults = {
            name: bp.value for name, bp in compiled.binds.items() if bp.value is not None and not bp.required
        }
        # Per positional parameter: its name, its default and its bind processor.
        plan = [(name, defaults.get(name), processors.get(name)) for name in compiled.positiontup or ()]
        # Plain str (not quoted_name): orjson writes only exact str keys.
        self.columns: tuple[str, ...] = tuple(str(rc.keyname) for rc in compiled._result_columns)
        # The columns that need converting (a list of 50 users converts ~450 values of
        # ~1,350); the row builder applies them in line, tuples() and first_column() too.
        self.converters: tuple[tuple[str, int, Callable[[Any], Any]], ...] = tuple(
            (str(rc.keyname), i, proc)
            for i, rc in enumerate(compiled._result_columns)
            if (proc := _result_converter(rc.type, dialect)) is not None
        )
        #: A fetched tuple as a row dict, the converters applied in line (see _row_builder).
        self.build = _row_builder(self.columns, {i: c for _, i, c in self.converters})
        self._args = _args_builder(plan)

    def args(self, params: Mapping[str, Any] | None) -> list[Any]:
        """The positional bind arguments, each processed as its column's type wants."""
        return self._args(params if params is not None else _NO_PARAMS)

    def rows(self, raw: Any, params: Mapping[str, Any] | None) -> list[Row]:
        return list(map(self.build, raw.execute(self.sql, self.args(params)).fetchall()))

    def tuples(self, raw: Any, params: Mapping[str, Any] | None) -> list[tuple[Any, ...]]:
        fetched: list[tuple[Any, ...]] = raw.execute(self.sql, self.args(params)).fetchall()
        if not self.converters:
            return fetched  # the driver's own tuples
        return [tuple(row.values()) for row in map(self.build, fetched)]

    def first_column(self, raw: Any, params: Mapping[str, Any] | None) -> list[Any]:
        values = [row[0] for row in raw.execute(self.sql, self.args(params)).fetchall()]
        for _name, i, convert in self.converters:
            if i == 0:
                return [convert(v) if v is not None else v for v in values]
        return values

    def run(self, raw: Any, params: Mapping[str, Any] | None) -> int:
        """A statement that returns no rows; the number of rows it changed."""
        return int(raw.execute(self.sql, self.args(params)).rowcount)


_NO_PARAMS: Mapping[str, Any] = {}


def _args_builder(
    plan: Sequence[tuple[str, Any, Callable[[Any], Any] | None]],
) -> Callable[[Mapping[str, Any]], list[Any]]:
    """A function made for one statement that lists its bind arguments from a parameter
    mapping (``[g("id", None), p1(g("at", None))]``): an insert of an audit entry binds 14
    values, and a loop over the plan cost more than the rest of the insert's Python."""
    items = []
    namespace: dict[str, Any] = {}
    for i, (name, default, proc) in enumerate(plan):
        namespace[f"d{i}"] = default
        value = f"g({name!r}, d{i})"
        if proc is not None:
            namespace[f"p{i}"] = proc
            value = f"p{i}({value})"
        items.append(value)
    exec(f"def args(params):\n    g = params.get\n    return [{', '.join(items)}]\n", namespace)  # noqa: S102
    built: Callable[[Mapping[str, Any]], list[Any]] = namespace["args"]
    return built


def _row_builder(
    columns: Sequence[str], converters: Mapping[int, Callable[[Any], Any]]
) -> Callable[[tuple[Any, ...]], Row]:
    """A function made for one query that turns a fetched tuple into its row dict.

    Generated like ``namedtuple`` and ``dataclasses`` make their methods: a dict display
    with one item per column (``{"id": r[0], "created_at": c1(r[1]) if r[1] is not None
    else None}``) costs a third of ``dict(zip(...))`` plus a loop over the converters, and
    every prepared read goes through it.
    """
    items = []
    for i, name in enumerate(columns):
        value = f"c{i}(r[{i}]) if r[{i}] is not None else None" if i in converters else f"r[{i}]"
        items.append(f"{name!r}: {value}")
    namespace = {f"c{i}": convert for i, convert in converters.items()}
    exec(f"def build(r):\n    return {{{', '.join(items)}}}\n", namespace)  # noqa: S102
    return namespace["build"]


def _bind_converter(type_: Any, proc: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """How a Python value becomes its SQLite value: SQLAlchemy's processor, but for UTC
    timestamps the same fixed-width text from ``isoformat`` (C-coded) instead of ``strftime``.
    """
    if proc is None or not isinstance(type_, UTCDateTime):
        return proc

    def utc_text(value: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return sqlite_utc_text(value)

    return utc_text


def _result_converter(type_: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """How a SQLite value of this column type becomes its Python value (None: as it is).

    The common types get C-coded converters that do what SQLAlchemy's processors do: UTC
    timestamps and dates are fixed-width ISO text (``fromisoformat``), booleans 0/1, JSON
    text. Anything else keeps SQLAlchemy's own processor.
    """
    if isinstance(type_, UTCDateTime):
        return parse_sqlite_utc
    if isinstance(type_, Boolean):
        return bool
    if isinstance(type_, JSON):
        return orjson.loads
    if type(type_) is Date:
        return date.fromisoformat
    proc: Callable[[Any], Any] | None = type_._cached_result_processor(dialect, None)
    return proc


Statement = Executable | Query


class Tx:
    """One transaction. Results are fully buffered; rows come back as plain dicts.

    Every method takes a statement built per call or a prepared :class:`Query`.
    """

    dialect: str
    #: Whether the commit must be on disk before the write returns (``write(durable=True)``).
    durable: bool = False

    async def execute(self, stmt: Statement, params: Params = None) -> Result[Any]:
        raise NotImplementedError

    async def all(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        result = await self.execute(stmt, params)
        return [dict(r) for r in result.mappings()]

    async def first(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> Row | None:
        rows = await self.all(stmt, params)
        return rows[0] if rows else None

    async def scalar(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> Any:
        rows = await self.all(stmt, params)
        return next(iter(rows[0].values())) if rows else None

    async def scalars(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> list[Any]:
        return [next(iter(r.values())) for r in await self.all(stmt, params)]

    async def rowcount(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> int:
        result = await self.execute(stmt, params)
        return int(getattr(result, "rowcount", 0) or 0)

    async def tuples(self, query: Query, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """A prepared query's rows as tuples in its column order: for reads whose rows are
        keys, not records (no dict per row). On SQLite, the driver's own tuples."""
        result = await self.execute(query, params)
        return [tuple(row) for row in result]

    async def run(self, query: Query, params: Mapping[str, Any] | None = None) -> int:
        """Run a prepared statement that returns no rows (INSERT, UPDATE, DELETE); rows changed.

        On SQLite it goes straight to the driver: ~20 µs instead of ~150 µs through
        SQLAlchemy's execution context.
        """
        return await self.rowcount(query, params)


def _translate(exc: DBAPIError) -> Exception:
    """Foreign exceptions become domain errors at this one boundary.

    A uniqueness or foreign-key violation is a client-visible conflict (two requests raced
    for one name, or a referenced object went away); anything else — a NOT NULL or CHECK
    violation — is a bug in our validation, reported as an internal error, not the client's.
    """
    if isinstance(exc, IntegrityError):
        text = str(exc.orig).lower()
        if "unique" in text or "duplicate key" in text or "primary key" in text:
            return Conflict("the object conflicts with one that already exists")
        if "foreign key" in text:
            return Conflict("the object refers to something that does not exist (any more)")
        return InternalError()
    if isinstance(exc, DataError) or str(getattr(exc.orig, "sqlstate", None) or "").startswith("22"):
        # SQLSTATE class 22, "data exception": a value the column cannot hold (asyncpg's
        # "value out of int32 range" is 22000, PostgreSQL's numeric_value_out_of_range 22003).
        return out_of_range()
    return Unavailable("the database is not available")


def out_of_range() -> InvalidParams:
    """A value the database cannot hold (an integer wider than its column).

    The bounded types of ``domain/numbers.py`` keep such values out at validation; this is
    the safety net behind them, so a bound forgotten somewhere is a 422, never a 500.
    """
    return InvalidParams([FieldError("params", "a value is out of the range the database can hold", "range")])


def _translate_driver(exc: sqlite3.Error | OverflowError) -> Exception:
    """A driver error from the fast path: as :func:`_translate` does for SQLAlchemy's."""
    if isinstance(exc, OverflowError):
        return out_of_range()
    if isinstance(exc, sqlite3.IntegrityError):
        return _translate(IntegrityError(None, None, exc))
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
            raise _translate(exc) from exc
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
            raise _translate(exc) from exc


class UnitOfWork:
    """Writes made inside :meth:`Database.unit_of_work` share one transaction.

    The transaction begins lazily, at the first ``write()`` inside the scope, so work done
    before it (hashing a password, generating a key) does not hold the write lock.
    """

    __slots__ = ("_cm", "closed", "db", "tx")

    def __init__(self, db: Database) -> None:
        self.db = db
        self.tx: Tx | None = None
        self.closed = False
        self._cm: contextlib.AbstractAsyncContextManager[Tx] | None = None

    def active_for(self, db: Database) -> bool:
        # Tasks started inside the unit inherit the context variable; once the unit has
        # ended they must get transactions of their own.
        return self.db is db and not self.closed

    @property
    def wrote(self) -> bool:
        """Whether anything inside the scope opened a write transaction."""
        return self.tx is not None

    async def _join(self) -> Tx:
        if self.tx is None:
            cm = self.db._write()
            self.tx = await cm.__aenter__()
            self._cm = cm  # only once begun: a failed BEGIN has nothing to end
        return self.tx


_unit_of_work: ContextVar[UnitOfWork | None] = ContextVar("mailroom_unit_of_work", default=None)


class _Given(contextlib.AbstractAsyncContextManager[Tx]):
    """An already open transaction, lent to a nested ``read()``."""

    __slots__ = ("tx",)

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def __aenter__(self) -> Tx:
        return self.tx

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Joined(contextlib.AbstractAsyncContextManager[Tx]):
    """A ``write()`` inside a unit of work: the unit's transaction, begun on first use."""

    __slots__ = ("durable", "unit")

    def __init__(self, unit: UnitOfWork, durable: bool) -> None:
        self.unit = unit
        self.durable = durable

    async def __aenter__(self) -> Tx:
        tx = await self.unit._join()
        if self.durable:
            tx.durable = True
        return tx

    async def __aexit__(self, *exc: object) -> None:
        return None


class _UnitScope(contextlib.AbstractAsyncContextManager[UnitOfWork]):
    """The block of :meth:`Database.unit_of_work`: commits (or rolls back) the unit at its end."""

    __slots__ = ("db", "token", "unit")

    def __init__(self, db: Database) -> None:
        self.db = db
        self.unit: UnitOfWork | None = None
        self.token: Token[UnitOfWork | None] | None = None

    async def __aenter__(self) -> UnitOfWork:
        outer = _unit_of_work.get()
        if outer is not None and outer.active_for(self.db):
            return outer  # nested: the outer unit commits
        self.unit = UnitOfWork(self.db)
        self.token = _unit_of_work.set(self.unit)
        return self.unit

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        unit, token = self.unit, self.token
        if unit is None or token is None:
            return
        unit.closed = True
        try:
            if unit._cm is not None:
                await unit._cm.__aexit__(exc_type, exc, tb)
        finally:
            _unit_of_work.reset(token)


class Database:
    """What services hold: ``read()`` and ``write()`` transactions, ``ping()``, ``close()``."""

    url: str
    dialect: str

    def read(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A read; inside a unit of work that has written, the unit's own transaction."""
        unit = _unit_of_work.get()
        if unit is not None and unit.active_for(self) and unit.tx is not None:
            return _Given(unit.tx)
        return self._read()

    def write(self, *, durable: bool = False) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A write transaction: committed at the end of the block, or of the unit of work.

        ``durable``: the commit is on disk before this returns, whatever ``durable_commits``
        says (a unit of work joined by one durable write commits durably).
        """
        # Context managers of our own rather than generators: an admin change opens four
        # of them, and a generator-based one costs several times as much.
        unit = _unit_of_work.get()
        if unit is not None and unit.active_for(self):
            return _Joined(unit, durable)
        return self._durable_write() if durable else self._write()

    @contextlib.asynccontextmanager
    async def _durable_write(self) -> AsyncIterator[Tx]:
        async with self._write() as tx:
            tx.durable = True
            yield tx

    def unit_of_work(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        """Every ``write()`` inside joins one transaction, committed once when the block ends.

        The audit filter wraps admin changes in one, so that the audit entry commits with the
        change it records — atomic, and one fsync instead of two. An error anywhere inside
        rolls everything back. Nested units join the outer one.
        """
        return _UnitScope(self)

    def _read(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        raise NotImplementedError

    def _write(self) -> contextlib.AbstractAsyncContextManager[Tx]:
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


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


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
            "json_serializer": _json_dumps,
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
            await asyncio.to_thread(_sync_file, self._flusher.wal)

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
            json_serializer=_json_dumps,
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
                raise _translate(exc) from exc
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
