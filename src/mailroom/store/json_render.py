"""Rows serialised straight to JSON, as the API's model would dump them.

A page of 50 users cost ~0.9 ms of CPU when each row became a pydantic model that was then
dumped back to JSON-shaped data: ~1,350 values validated and converted twice. The rows the
store returns already hold the right Python types (timestamps as aware UTC datetimes,
booleans, lists, dates), and orjson writes them as pydantic does: ``OPT_UTC_Z`` gives the
``...Z`` form of UTC timestamps (without the fraction when it is zero), floats are written
shortest-exact by both. So a store can select exactly a model's fields, in the model's order,
and hand the rows to :func:`render_rows`. A test renders random users both ways and compares
(tests/store/test_json_render.py), on SQLite and PostgreSQL.

Fetching is then the larger cost: Python's sqlite3 pays ~150-190 ns per value (it releases
the GIL per column), ~170-200 us for 50 users of 25 columns. A :class:`RowCache` keeps rows
rendered, keyed by ``(id, row_version)``, a version the database changes on every insert and
update (migration 0003_row_version): a page then fetches two values per row, and the whole
rows of those it does not hold, in one more statement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import Column, Table

from mailroom.store.engine import Row


def model_columns(model: type[BaseModel], table: Table) -> list[Column[Any]]:
    """The columns of ``table`` named like the fields of ``model``, in the model's order.

    Every field must be a column and keep its name in JSON (no alias): then a row of these
    columns is the model's JSON form once serialised.
    """
    columns = []
    for name, field in model.model_fields.items():
        if name not in table.c:
            raise TypeError(f"{model.__name__}.{name} is not a column of {table.name}")
        if (field.serialization_alias or name) != name:
            raise TypeError(f"{model.__name__}.{name} has another name in JSON")
        columns.append(table.c[name])
    return columns


def _plain_keys(rows: list[Row]) -> list[Row]:
    """``rows`` with exact ``str`` keys: SQLAlchemy's result keys are quoted_name (a str
    subclass) and orjson writes only exact str keys; the prepared SQLite path already gives
    plain ones."""
    if rows and any(type(key) is not str for key in rows[0]):
        return [{str(k): v for k, v in row.items()} for row in rows]
    return rows


def render_rows(rows: list[Row]) -> orjson.Fragment:
    """A JSON array of ``rows`` (selected with :func:`model_columns`), ready to embed."""
    return orjson.Fragment(orjson.dumps(_plain_keys(rows), option=orjson.OPT_UTC_Z))


def render_each(rows: list[Row]) -> list[bytes]:
    """Each of ``rows`` (selected with :func:`model_columns`) as its own JSON object."""
    dumps, option = orjson.dumps, orjson.OPT_UTC_Z
    return [dumps(row, option=option) for row in _plain_keys(rows)]


def join_rendered(parts: Iterable[bytes]) -> orjson.Fragment:
    """A JSON array of rendered objects, ready to embed."""
    return orjson.Fragment(b"[" + b",".join(parts) + b"]")


RowKey = tuple[int, int]


class RowCache(dict[RowKey, bytes]):
    """Rows rendered as JSON, by ``(id, row_version)``: at most ``max_entries`` of them.

    A key names one state of one row for good (the database picks a new random version on
    every write), so an entry is never stale, only unused: nothing has to invalidate it, in
    this process or any other. The oldest entry goes first (insertion order), and entries of
    overwritten versions age out the same way. A dict, so that a lookup is ``dict.get`` and
    nothing more (50 of them per page). Per process, used from the event loop's thread only.
    """

    __slots__ = ("max_entries",)

    def __init__(self, max_entries: int) -> None:
        super().__init__()
        self.max_entries = max_entries

    def put(self, key: RowKey, rendered: bytes) -> bytes:
        """Keep ``rendered`` under ``key``, dropping the oldest entry when full; return it."""
        self[key] = rendered
        if len(self) > self.max_entries:
            del self[next(iter(self))]
        return rendered
