"""Repository of the audit log: one row per change made through the admin API or the CLI."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import func, select

from mailroom.store._prepared import insert_query
from mailroom.store.accounting_schema import audit_log as t
from mailroom.store.engine import Tx
from mailroom.store.sorting import order_by

_INSERT = insert_query(t)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry of the audit log as stored (secrets were redacted before it was written)."""

    id: int
    at: datetime
    principal: str
    user_id: int | None
    key_id: str | None
    protocol: str
    client_ip: str | None
    request_id: str | None
    method: str
    object: str
    target: str | None
    domain: str | None
    params: dict[str, Any]
    changes: dict[str, Any] | None


_FIELDS = [t.c[name] for name in AuditRecord.__dataclass_fields__]


class AuditEntry(TypedDict):
    """The columns :func:`add` writes (every one but the generated id)."""

    at: datetime
    principal: str
    user_id: int | None
    key_id: str | None
    protocol: str
    client_ip: str | None
    request_id: str | None
    method: str
    object: str
    target: str | None
    domain: str | None
    params: dict[str, Any]
    changes: dict[str, Any] | None


async def add(tx: Tx, values: AuditEntry) -> None:
    await tx.run(_INSERT, values)


async def page(
    tx: Tx,
    *,
    domains: Collection[str] | None,
    start: datetime | None = None,
    end: datetime | None = None,
    method: str | None = None,
    principal: str | None = None,
    target: str | None = None,
    domain: str | None = None,
    offset: int,
    limit: int,
    sort: str = "-at",
) -> tuple[list[AuditRecord], int]:
    """Newest first (or by ``sort``). ``domains`` limits entries to those domains (a manager's view)."""
    conditions: list[Any] = []
    if domains is not None:
        conditions.append(t.c.domain.in_(list(domains)))
    if start is not None:
        conditions.append(t.c.at >= start)
    if end is not None:
        conditions.append(t.c.at < end)
    if method is not None:
        if "*" in method:
            pattern = method.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
            conditions.append(t.c.method.like(pattern, escape="\\"))
        else:
            conditions.append(t.c.method == method)
    if principal is not None:
        conditions.append(t.c.principal == principal)
    if target is not None:
        conditions.append(t.c.target == target)
    if domain is not None:
        conditions.append(t.c.domain == domain)
    terms = order_by(t.c, sort, t.c.id)
    query = select(*_FIELDS).where(*conditions).order_by(*terms).offset(offset).limit(limit)
    count = select(func.count()).select_from(t).where(*conditions)
    return [AuditRecord(**row) for row in await tx.all(query)], int(await tx.scalar(count) or 0)
