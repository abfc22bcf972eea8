"""Repository of the public key directory: OpenPGP keys users publish for their address."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select

from mailroom.store.client_schema import public_keys
from mailroom.store.engine import Query, Row, Tx

_PUBLIC = [c for c in public_keys.c if c.name != "user_id"]

_BY_FINGERPRINT = Query(select(public_keys).where(public_keys.c.fingerprint == bindparam("fingerprint")))
_BY_EMAIL = Query(
    select(*_PUBLIC)
    .where(
        public_keys.c.email == bindparam("email"),
        or_(public_keys.c.expires_at.is_(None), public_keys.c.expires_at > bindparam("now")),
    )
    .order_by(public_keys.c.published_at.desc(), public_keys.c.fingerprint)
)
_OF_USER = Query(
    select(*_PUBLIC)
    .where(public_keys.c.user_id == bindparam("user_id"))
    .order_by(public_keys.c.published_at.desc(), public_keys.c.fingerprint)
)


async def get(tx: Tx, fingerprint: str) -> Row | None:
    """One key by fingerprint, with its owner's ``user_id``."""
    return await tx.first(_BY_FINGERPRINT, {"fingerprint": fingerprint})


async def by_email(tx: Tx, email: str, now: datetime) -> list[Row]:
    """The keys published for an address that have not expired, newest first."""
    return await tx.all(_BY_EMAIL, {"email": email, "now": now})


async def of_user(tx: Tx, user_id: int) -> list[Row]:
    return await tx.all(_OF_USER, {"user_id": user_id})


async def insert_key(tx: Tx, values: dict[str, Any]) -> None:
    """Publish a key; a fingerprint already in the directory is a Conflict."""
    await tx.execute(insert(public_keys).values(**values))


async def delete_key(tx: Tx, fingerprint: str, user_id: int) -> bool:
    stmt = delete(public_keys).where(
        public_keys.c.fingerprint == fingerprint, public_keys.c.user_id == user_id
    )
    return await tx.rowcount(stmt) > 0
