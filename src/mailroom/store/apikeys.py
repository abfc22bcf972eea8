"""Repository of API keys. The secret itself is never stored, only its SHA-256 digest."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from mailroom.store.engine import Query, Row, Tx
from mailroom.store.filtering import containing
from mailroom.store.schema import api_keys, users
from mailroom.store.sorting import order_by

_PUBLIC = [c for c in api_keys.c if c.name != "digest"] + [users.c.email.label("owner")]


def _joined() -> Any:
    return api_keys.outerjoin(users, users.c.id == api_keys.c.owner_id)


_FOR_AUTH = Query(select(api_keys).where(api_keys.c.id == bindparam("key_id")))


async def get_for_auth(tx: Tx, key_id: str) -> Row | None:
    """The row authentication needs, digest included (runs on every API-key request)."""
    return await tx.first(_FOR_AUTH, {"key_id": key_id})


async def get(tx: Tx, key_id: str) -> Row | None:
    return await tx.first(select(*_PUBLIC).select_from(_joined()).where(api_keys.c.id == key_id))


async def page(
    tx: Tx,
    *,
    owner_ids: Collection[int] | None,
    offset: int,
    limit: int,
    sort: str = "created_at",
    q: str | None = None,
) -> tuple[list[Row], int]:
    query = select(*_PUBLIC).select_from(_joined())
    count = select(func.count()).select_from(api_keys)
    if owner_ids is not None:
        query = query.where(api_keys.c.owner_id.in_(list(owner_ids)))
        count = count.where(api_keys.c.owner_id.in_(list(owner_ids)))
    if q is not None:  # the key's name or its id (the part of the key before the secret)
        query = query.where(containing(q, api_keys.c.name, api_keys.c.id))
        count = count.where(containing(q, api_keys.c.name, api_keys.c.id))
    terms = order_by(api_keys.c, sort, api_keys.c.id)
    rows = await tx.all(query.order_by(*terms).offset(offset).limit(limit))
    return rows, int(await tx.scalar(count) or 0)


async def insert_key(tx: Tx, values: dict[str, Any]) -> None:
    await tx.execute(insert(api_keys).values(**values))


async def delete_key(tx: Tx, key_id: str) -> bool:
    return await tx.rowcount(delete(api_keys).where(api_keys.c.id == key_id)) > 0


async def touch(tx: Tx, key_id: str, when: datetime) -> None:
    await tx.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=when))


async def count_admin_keys(tx: Tx) -> int:
    return int(await tx.scalar(select(func.count()).select_from(api_keys).where(api_keys.c.is_admin)) or 0)
