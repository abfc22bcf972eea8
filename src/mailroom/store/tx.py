"""The transaction contract: what services and repositories see of the database.

Services never see SQLAlchemy: they open ``db.read()`` or ``db.write()`` (or a
``db.unit_of_work()`` that several writes join) and pass the :class:`Tx` to the repository
functions of this package. Each engine implements ``_read``/``_write`` and its ``Tx``:
:mod:`.sqlite` (statements on the event loop, a writer lock, the WAL flusher) and
:mod:`.postgresql` (SQLAlchemy's asyncio engine on asyncpg). Foreign errors become domain
errors here (:func:`translate`), for both.

Durability (setting ``durable_commits``). A ``write(durable=True)`` returns only once its
commit is on disk: ingest and the outbound queue use it, because their commit is a promise
to another server (a 250 reply). Other writes — admin changes, client settings — by default
do not wait for the disk (each engine says how it defers them). A power loss (not a crash of
the process: the OS still holds the data) may lose the last of them, never corrupt or
reorder anything. ``durable_commits="all"`` makes every commit wait.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Result
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.sql import Executable

from mailroom.errors import Conflict, FieldError, InternalError, InvalidParams, Unavailable
from mailroom.store.query import Query, Row

__all__ = ["Database", "Params", "Row", "Statement", "Tx", "UnitOfWork", "out_of_range", "translate"]

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


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


def translate(exc: DBAPIError) -> Exception:
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


def json_dumps(value: Any) -> str:
    """JSON for SQLAlchemy's JSON columns (both engines)."""
    return orjson.dumps(value).decode()
