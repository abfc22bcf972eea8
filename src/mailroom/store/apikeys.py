"""Repository of API keys. The secret itself is never stored, only its SHA-256 digest."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import bindparam, delete, func, insert, select, update

from mailroom.store.engine import Query, Tx
from mailroom.store.filtering import containing
from mailroom.store.schema import api_keys, users
from mailroom.store.sorting import order_by


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as listings show it: never its digest; ``owner`` is the owner's address."""

    id: str
    name: str
    owner_id: int | None
    owner: str | None
    is_admin: bool
    scopes: list[str] | None
    allowed_networks: list[str] | None
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKeyCredential:
    """What authenticating with a key needs, its digest included (kept out of ``repr``)."""

    id: str
    digest: str = field(repr=False)
    owner_id: int | None
    is_admin: bool
    scopes: list[str] | None
    allowed_networks: list[str] | None
    expires_at: datetime | None


_PUBLIC = [
    users.c.email.label("owner") if name == "owner" else api_keys.c[name]
    for name in ApiKeyRecord.__dataclass_fields__
]


def _joined() -> Any:
    return api_keys.outerjoin(users, users.c.id == api_keys.c.owner_id)


_FOR_AUTH = Query(
    select(*[api_keys.c[name] for name in ApiKeyCredential.__dataclass_fields__]).where(
        api_keys.c.id == bindparam("key_id")
    )
)


async def get_for_auth(tx: Tx, key_id: str) -> ApiKeyCredential | None:
    """What authentication needs, digest included (runs on every API-key request)."""
    row = await tx.first(_FOR_AUTH, {"key_id": key_id})
    return ApiKeyCredential(**row) if row is not None else None


async def get(tx: Tx, key_id: str) -> ApiKeyRecord | None:
    """One key without its digest."""
    row = await tx.first(select(*_PUBLIC).select_from(_joined()).where(api_keys.c.id == key_id))
    return ApiKeyRecord(**row) if row is not None else None


async def page(
    tx: Tx,
    *,
    owner_ids: Collection[int] | None,
    offset: int,
    limit: int,
    sort: str = "created_at",
    q: str | None = None,
) -> tuple[list[ApiKeyRecord], int]:
    """Keys by creation (or ``sort``), only those of ``owner_ids`` unless it is None and those
    whose name or id contains ``q``; and their total."""
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
    return [ApiKeyRecord(**row) for row in rows], int(await tx.scalar(count) or 0)


class NewApiKey(TypedDict):
    """The columns :func:`insert_key` writes (never used yet, so no last use)."""

    id: str
    name: str
    digest: str
    owner_id: int | None
    is_admin: bool
    scopes: list[str] | None
    allowed_networks: list[str] | None
    expires_at: datetime | None
    created_at: datetime


async def insert_key(tx: Tx, values: NewApiKey) -> None:
    await tx.execute(insert(api_keys).values(**values))


async def delete_key(tx: Tx, key_id: str) -> bool:
    return await tx.rowcount(delete(api_keys).where(api_keys.c.id == key_id)) > 0


async def touch(tx: Tx, key_id: str, when: datetime) -> None:
    await tx.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=when))


async def count_admin_keys(tx: Tx) -> int:
    return int(await tx.scalar(select(func.count()).select_from(api_keys).where(api_keys.c.is_admin)) or 0)
