"""Look-ups authentication needs: a user by address or id, and the domains they manage."""

from __future__ import annotations

from sqlalchemy import select, update

from mailroom.store.engine import Row, Tx
from mailroom.store.schema import managers, users

_AUTH_COLS = [users.c.id, users.c.email, users.c.domain, users.c.enabled, users.c.global_admin, users.c.password_hash]


async def user_for_auth(tx: Tx, *, email: str | None = None, user_id: int | None = None) -> Row | None:
    query = select(*_AUTH_COLS)
    query = query.where(users.c.email == email) if email is not None else query.where(users.c.id == user_id)
    return await tx.first(query)


async def managed_domains(tx: Tx, user_id: int) -> frozenset[str]:
    return frozenset(await tx.scalars(select(managers.c.domain).where(managers.c.user_id == user_id)))


async def set_password_hash(tx: Tx, user_id: int, password_hash: str) -> None:
    await tx.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))
