"""ORDER BY for a list's ``sort`` value (domain/sorting.py): the field's column, then the key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ColumnElement
from sqlalchemy.sql.expression import ColumnCollection

from mailroom.domain.sorting import parse_sort


def order_by(
    columns: ColumnCollection[str, Column[Any]], sort: str, *key: Column[Any]
) -> list[ColumnElement[Any]]:
    """The ORDER BY terms: ``sort``'s column (NULLs last either way), then ``key`` in the
    same direction, so that equal values keep one order across pages."""
    field, descending = parse_sort(sort)
    column = columns[field]  # the method's Literal type admits only these
    terms: list[ColumnElement[Any]] = [
        column.desc().nulls_last() if descending else column.asc().nulls_last()
    ]
    terms += [k.desc() if descending else k.asc() for k in key if k is not column]
    return terms
