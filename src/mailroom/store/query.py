"""Prepared statements: a :class:`Query` is built once, and on SQLite compiled once into
plain driver calls.

For each prepared statement this module generates two small functions (the way
``namedtuple`` and ``dataclasses`` generate their methods): one that lists the bind
arguments from a parameter mapping, one that turns a fetched tuple into its row, each with
the column types' converters in line. SQLAlchemy's public type API gives the bind and
result processors; the one thing it has no public API for, the key and type of each
returned column as the compiler labelled them, comes from :mod:`._sqlalchemy_internals`.

PostgreSQL runs the same :class:`Query` through SQLAlchemy's asyncio execution (its
compiled cache makes that cheap there); only SQLite takes the driver path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Date
from sqlalchemy.sql import Executable

from mailroom.store._sqlalchemy_internals import result_columns
from mailroom.store.types import UTCDateTime, parse_sqlite_utc, sqlite_utc_text

#: A fetched row: column key to value.
Row = dict[str, Any]


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

    __slots__ = ("_args", "build", "build_tuple", "columns", "converters", "sql")

    def __init__(self, stmt: Executable, dialect: Any) -> None:
        compiled: Any = stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.sql: str = compiled.string
        # Per positional parameter: its name, its default and its bind processor.
        plan = []
        for name in compiled.positiontup or ():
            bp = compiled.binds[name]
            default = bp.value if bp.value is not None and not bp.required else None
            proc = bp.type.dialect_impl(dialect).bind_processor(dialect)
            plan.append((name, default, _bind_converter(bp.type, proc)))
        returned = result_columns(compiled)
        self.columns: tuple[str, ...] = tuple(column.key for column in returned)
        # The columns that need converting (a list of 50 users converts ~450 values of
        # ~1,350); the row builder applies them in line, tuples() and first_column() too.
        self.converters: tuple[tuple[str, int, Callable[[Any], Any]], ...] = tuple(
            (column.key, i, proc)
            for i, column in enumerate(returned)
            if (proc := _result_converter(column.type, dialect)) is not None
        )
        #: A fetched tuple as a row dict, the converters applied in line (see _row_builder).
        self.build = _row_builder(self.columns, {i: c for _, i, c in self.converters})
        #: The same as a tuple, for reads whose rows become named tuples (no dict between).
        self.build_tuple = _tuple_builder(len(self.columns), {i: c for _, i, c in self.converters})
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
        return list(map(self.build_tuple, fetched))

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


def _tuple_builder(
    size: int, converters: Mapping[int, Callable[[Any], Any]]
) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """As :func:`_row_builder`, a tuple display instead of a dict display."""
    items = [
        f"c{i}(r[{i}]) if r[{i}] is not None else None" if i in converters else f"r[{i}]" for i in range(size)
    ]
    namespace = {f"c{i}": convert for i, convert in converters.items()}
    exec(f"def build(r):\n    return ({''.join(f'{item}, ' for item in items)})\n", namespace)  # noqa: S102
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
    proc: Callable[[Any], Any] | None = type_.dialect_impl(dialect).result_processor(dialect, None)
    return proc
