"""Repository of send-as identities: (user, address) pairs a manager or admin granted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select

from mailroom.store.engine import Tx
from mailroom.store.schema import send_as, users


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """A send-as identity: the user (by address) who may send as ``address``."""

    user: str
    address: str
    display_name: str
    created_at: datetime


_COLUMNS = [users.c.email.label("user"), send_as.c.address, send_as.c.display_name, send_as.c.created_at]
_JOINED = send_as.join(users, users.c.id == send_as.c.user_id)


async def granted(tx: Tx, user_id: int, addresses: list[str]) -> bool:
    """Whether ``user_id`` holds an identity for any of ``addresses`` (normalised forms)."""
    query = select(send_as.c.address).where(send_as.c.user_id == user_id, send_as.c.address.in_(addresses))
    return bool(await tx.first(query.limit(1)))


async def page(tx: Tx, user_id: int, *, offset: int, limit: int) -> tuple[list[IdentityRecord], int]:
    """A user's identities by address."""
    query = select(*_COLUMNS).select_from(_JOINED).where(send_as.c.user_id == user_id)
    rows = await tx.all(query.order_by(send_as.c.address).offset(offset).limit(limit))
    total = await tx.scalar(select(func.count()).select_from(send_as).where(send_as.c.user_id == user_id))
    return [IdentityRecord(**row) for row in rows], int(total or 0)


async def get(tx: Tx, user_id: int, address: str) -> IdentityRecord | None:
    """One identity, or None."""
    query = select(*_COLUMNS).select_from(_JOINED)
    row = await tx.first(query.where(send_as.c.user_id == user_id, send_as.c.address == address))
    return IdentityRecord(**row) if row is not None else None


async def insert_identity(
    tx: Tx, user_id: int, address: str, display_name: str, created_at: datetime
) -> None:
    """Grant an identity; a second grant of the same address is a Conflict (primary key)."""
    await tx.execute(
        insert(send_as).values(
            user_id=user_id, address=address, display_name=display_name, created_at=created_at
        )
    )


async def delete_identity(tx: Tx, user_id: int, address: str) -> bool:
    """Take an identity away; False when the user did not hold it."""
    stmt = delete(send_as).where(send_as.c.user_id == user_id, send_as.c.address == address)
    return await tx.rowcount(stmt) > 0


async def holders(tx: Tx, address: str) -> list[str]:
    """The addresses of the enabled users granted ``address`` as a send-as identity."""
    query = (
        select(users.c.email)
        .select_from(_JOINED)
        .where(send_as.c.address == address, users.c.enabled.is_(True))
        .order_by(users.c.email)
    )
    return [str(v) for v in await tx.scalars(query)]
