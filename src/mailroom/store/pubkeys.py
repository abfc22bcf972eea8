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


_BY_KEY_ID = Query(
    select(*_PUBLIC)
    .where(public_keys.c.fingerprint.like(bindparam("suffix")))
    .order_by(public_keys.c.published_at.desc(), public_keys.c.fingerprint)
    .limit(50)
)
_OF_DOMAIN = Query(
    select(public_keys.c.email).where(public_keys.c.email.like(bindparam("pattern"), escape="\\")).distinct()
)


async def by_key_id(tx: Tx, key_id: str) -> list[Row]:
    """Keys whose fingerprint ends with ``key_id`` (a long or short OpenPGP key id, upper hex)."""
    return await tx.all(_BY_KEY_ID, {"suffix": f"%{key_id}"})


async def addresses_in_domain(tx: Tx, domain: str) -> list[str]:
    """The addresses of ``domain`` that have published keys (WKD resolves its hashes over them)."""
    escaped = domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return [str(v) for v in await tx.scalars(_OF_DOMAIN, {"pattern": f"%@{escaped}"})]
