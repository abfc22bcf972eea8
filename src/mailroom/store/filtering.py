"""WHERE terms for a list's text filter ``q`` (domain/filtering.py): a case-insensitive
substring of one of a few columns, with ``%`` and ``_`` taken literally."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_


def containing(q: str, *columns: ColumnElement[Any]) -> ColumnElement[bool]:
    """Rows where any of ``columns`` contains ``q``, case aside (the same on SQLite and
    PostgreSQL: both sides lower-cased; LIKE's wildcards in ``q`` are escaped)."""
    needle = q.lower()
    return or_(*(func.lower(c).contains(needle, autoescape=True) for c in columns))
