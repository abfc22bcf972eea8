"""Repository of usage counts: batched additions and reports grouped by period and dimension."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from mailroom.store.accounting_schema import usage_counts as t
from mailroom.store.engine import Tx


@dataclass(frozen=True, slots=True)
class UsageCount:
    """Calls of one minute by one principal (and key) to one method with one outcome."""

    minute: datetime
    principal: str
    user_id: int | None
    key_id: str  # "" when no API key was used
    api: str
    method: str
    outcome: str  # "ok" or the error code
    calls: int
    duration_ms: float  # the calls' total
    max_ms: float


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """Sums of one period (sortable text: ``2026-01-31 12`` for an hour) and, for each
    dimension the report groups by, its value (None for the others)."""

    period: str
    calls: int
    errors: int
    duration_ms: float
    max_ms: float
    user: str | None = None
    key: str | None = None
    api: str | None = None
    method: str | None = None
    outcome: str | None = None


#: Report dimensions → columns.
DIMENSIONS = {
    "user": t.c.principal,
    "key": t.c.key_id,
    "api": t.c.api,
    "method": t.c.method,
    "outcome": t.c.outcome,
}
#: Characters of the stored minute ("YYYY-MM-DD HH:MM:...") that name each period.
_PERIOD_CHARS = {"minute": 16, "hour": 13, "day": 10, "month": 7}
_PG_FORMATS = {
    "minute": "YYYY-MM-DD HH24:MI",
    "hour": "YYYY-MM-DD HH24",
    "day": "YYYY-MM-DD",
    "month": "YYYY-MM",
}


async def add(tx: Tx, rows: Sequence[UsageCount]) -> None:
    """Add counts: a row of an existing (minute, principal, key, api, method, outcome) adds up."""
    if not rows:
        return
    insert = postgresql.insert(t) if tx.dialect == "postgresql" else sqlite.insert(t)
    stmt = insert.on_conflict_do_update(
        index_elements=["minute", "principal", "key_id", "api", "method", "outcome"],
        set_={
            "calls": t.c.calls + insert.excluded.calls,
            "duration_ms": t.c.duration_ms + insert.excluded.duration_ms,
            "max_ms": case((insert.excluded.max_ms > t.c.max_ms, insert.excluded.max_ms), else_=t.c.max_ms),
            "user_id": func.coalesce(t.c.user_id, insert.excluded.user_id),
        },
    )
    await tx.execute(stmt, [asdict(row) for row in rows])


def _period(dialect: str, granularity: str) -> ColumnElement[Any]:
    """The period a minute belongs to, as sortable text (``2026-01-31 12`` for an hour)."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", t.c.minute), _PG_FORMATS[granularity])
    return func.substr(t.c.minute, 1, _PERIOD_CHARS[granularity])


async def report(
    tx: Tx,
    *,
    start: datetime,
    end: datetime,
    granularity: str,
    group_by: Collection[str],
    user_id: int | None = None,
) -> list[UsageTotal]:
    """Sums per period and per the chosen dimensions, in period order.

    ``user_id`` limits the report to one user's calls (a user reading their own usage).
    """
    period = _period(tx.dialect, granularity).label("period")
    dims = [DIMENSIONS[d].label(d) for d in DIMENSIONS if d in group_by]
    errors = func.sum(case((t.c.outcome != "ok", t.c.calls), else_=0))
    query = (
        select(
            period,
            *dims,
            func.sum(t.c.calls).label("calls"),
            errors.label("errors"),
            func.sum(t.c.duration_ms).label("duration_ms"),
            func.max(t.c.max_ms).label("max_ms"),
        )
        .where(t.c.minute >= start, t.c.minute < end)
        .group_by(period, *dims)
        .order_by(period, *dims)
    )
    if user_id is not None:
        query = query.where(t.c.user_id == user_id)
    return [
        UsageTotal(
            period=str(row.pop("period")),
            calls=int(row.pop("calls") or 0),
            errors=int(row.pop("errors") or 0),
            duration_ms=float(row.pop("duration_ms") or 0.0),
            max_ms=float(row.pop("max_ms") or 0.0),
            **row,  # the dimensions grouped by
        )
        for row in await tx.all(query)
    ]


async def prune(tx: Tx, before: datetime) -> int:
    """Forget counts older than ``before`` (retention)."""
    return await tx.rowcount(delete(t).where(t.c.minute < before))
