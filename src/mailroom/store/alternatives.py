"""Repository of alternative domains; each name is also claimed in ``domain_names``
(kind "alternative"). Deleting a domain removes its alternatives (``store.domains``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NotRequired, TypedDict

from sqlalchemy import delete, func, insert, select

from mailroom.store import domains
from mailroom.store.engine import Tx
from mailroom.store.schema import alternatives


@dataclass(frozen=True, slots=True)
class AlternativeRecord:
    """An alternative name of a domain as stored."""

    name: str
    domain: str
    comment: str
    created_at: datetime


_FIELDS = [alternatives.c[name] for name in AlternativeRecord.__dataclass_fields__]


async def get(tx: Tx, name: str) -> AlternativeRecord | None:
    """One alternative domain by name, with the domain it belongs to."""
    row = await tx.first(select(*_FIELDS).where(alternatives.c.name == name))
    return AlternativeRecord(**row) if row is not None else None


async def names_of(tx: Tx, domain: str) -> list[str]:
    """The alternative names of ``domain``, sorted."""
    return await tx.scalars(
        select(alternatives.c.name).where(alternatives.c.domain == domain).order_by(alternatives.c.name)
    )


async def page(tx: Tx, domain: str, *, offset: int, limit: int) -> tuple[list[AlternativeRecord], int]:
    """The alternatives of ``domain`` ordered by name, and their total."""
    rows = await tx.all(
        select(*_FIELDS)
        .where(alternatives.c.domain == domain)
        .order_by(alternatives.c.name)
        .offset(offset)
        .limit(limit)
    )
    count = select(func.count()).select_from(alternatives).where(alternatives.c.domain == domain)
    return [AlternativeRecord(**row) for row in rows], int(await tx.scalar(count) or 0)


class NewAlternative(TypedDict):
    """The columns :func:`insert_alternative` writes (alternatives have no updated_at)."""

    name: str
    domain: str
    comment: NotRequired[str]
    created_at: datetime


async def insert_alternative(tx: Tx, values: NewAlternative) -> None:
    """Claim the name (a taken one is a Conflict) and store the alternative."""
    await domains.claim_name(tx, values["name"], "alternative")
    await tx.execute(insert(alternatives).values(**values))


async def delete_alternative(tx: Tx, domain: str, name: str) -> bool:
    """Delete ``domain``'s alternative ``name`` and release the name; False when there was none."""
    gone = await tx.rowcount(
        delete(alternatives).where(alternatives.c.name == name, alternatives.c.domain == domain)
    )
    if gone:
        await domains.release_names(tx, [name])
    return gone > 0
