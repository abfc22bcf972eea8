"""Typed records kept per row version, so that a read fetches two values per row, not all.

Python's sqlite3 pays ~150-190 ns per value fetched (it releases the GIL per column):
~170-200 us for 50 users of 25 columns, before any conversion or validation. A
:class:`RowCache` keeps the typed record of a row under ``(id, row_version)``, a version the
database changes on every insert and update (migration 0003_row_version): a page then
fetches the keys, and the whole rows of only the records it does not hold, in one more
statement. The records are immutable (frozen models), so the same instance can be handed
to every caller; a front-end may in turn keep their serialised form by identity.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Column, Table

#: ``(id, row_version)``: one state of one row, for good.
RowKey = tuple[int, int]

R = TypeVar("R")


def model_columns(model: type[BaseModel], table: Table) -> list[Column[Any]]:
    """The columns of ``table`` named like the fields of ``model``, in the model's order.

    Every field must be a column under its own name: then a row of these columns validates
    as the model with nothing renamed or left out.
    """
    columns = []
    for name, field in model.model_fields.items():
        if name not in table.c:
            raise TypeError(f"{model.__name__}.{name} is not a column of {table.name}")
        if (field.validation_alias or name) != name:
            raise TypeError(f"{model.__name__}.{name} is read under another name")
        columns.append(table.c[name])
    return columns


class RowCache(dict[RowKey, R]):
    """Records by ``(id, row_version)``: at most ``max_entries`` of them.

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

    def put(self, key: RowKey, record: R) -> R:
        """Keep ``record`` under ``key``, dropping the oldest entry when full; return it."""
        self[key] = record
        if len(self) > self.max_entries:
            del self[next(iter(self))]
        return record
