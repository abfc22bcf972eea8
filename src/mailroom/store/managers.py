"""Repository of domain managers: (domain, user) pairs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select

from mailroom.store.engine import Tx
from mailroom.store.schema import managers, users


@dataclass(frozen=True, slots=True)
class ManagerRecord:
    """A manager of a domain: the user's address, and since when."""

    email: str
    created_at: datetime


_COLS = [users.c.email, managers.c.created_at]


async def page(tx: Tx, domain: str, *, offset: int, limit: int) -> tuple[list[ManagerRecord], int]:
    """Managers of ``domain`` ordered by address; and their total."""
    joined = managers.join(users, users.c.id == managers.c.user_id)
    query = select(*_COLS).select_from(joined).where(managers.c.domain == domain)
    rows = await tx.all(query.order_by(users.c.email).offset(offset).limit(limit))
    total = await tx.scalar(select(func.count()).select_from(managers).where(managers.c.domain == domain))
    return [ManagerRecord(**row) for row in rows], int(total or 0)


async def get(tx: Tx, domain: str, user_id: int) -> ManagerRecord | None:
    """One manager, or None when the user does not manage the domain."""
    joined = managers.join(users, users.c.id == managers.c.user_id)
    query = (
        select(*_COLS).select_from(joined).where(managers.c.domain == domain, managers.c.user_id == user_id)
    )
    row = await tx.first(query)
    return ManagerRecord(**row) if row is not None else None


async def insert_manager(tx: Tx, domain: str, user_id: int, created_at: datetime) -> None:
    """Make a user a manager of a domain; a second time is a Conflict (primary key)."""
    await tx.execute(insert(managers).values(domain=domain, user_id=user_id, created_at=created_at))


async def delete_manager(tx: Tx, domain: str, user_id: int) -> bool:
    """Take a domain away from a manager; False when they did not manage it."""
    return (
        await tx.rowcount(delete(managers).where(managers.c.domain == domain, managers.c.user_id == user_id))
        > 0
    )
