"""Repository of relayed domains; each name is also claimed in ``domain_names`` (kind "relay")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NotRequired, TypedDict

from sqlalchemy import delete, func, insert, select, update

from mailroom.store import domains
from mailroom.store.engine import Tx
from mailroom.store.filtering import containing
from mailroom.store.schema import relays
from mailroom.store.sorting import order_by


@dataclass(frozen=True, slots=True)
class RelayRecord:
    """A relayed domain as stored."""

    name: str
    smarthost: str
    comment: str
    created_at: datetime
    updated_at: datetime


_FIELDS = [relays.c[name] for name in RelayRecord.__dataclass_fields__]


async def get(tx: Tx, name: str) -> RelayRecord | None:
    """One relayed domain by name."""
    row = await tx.first(select(*_FIELDS).where(relays.c.name == name))
    return RelayRecord(**row) if row is not None else None


async def page(
    tx: Tx, *, offset: int, limit: int, sort: str = "name", q: str | None = None
) -> tuple[list[RelayRecord], int]:
    """Relayed domains ordered by name (or ``sort``), only those whose name or smarthost
    contains ``q`` when it is given, and their total."""
    terms = order_by(relays.c, sort, relays.c.name)
    query, count = select(*_FIELDS), select(func.count()).select_from(relays)
    if q is not None:
        query = query.where(containing(q, relays.c.name, relays.c.smarthost))
        count = count.where(containing(q, relays.c.name, relays.c.smarthost))
    rows = await tx.all(query.order_by(*terms).offset(offset).limit(limit))
    total = int(await tx.scalar(count) or 0)
    return [RelayRecord(**row) for row in rows], total


class NewRelay(TypedDict):
    """The columns :func:`insert_relay` writes; those left out take their defaults."""

    name: str
    smarthost: NotRequired[str]
    comment: NotRequired[str]
    created_at: datetime
    updated_at: datetime


class RelayChanges(TypedDict, total=False):
    """The columns :func:`update_relay` may change (any subset)."""

    smarthost: str
    comment: str
    updated_at: datetime


async def insert_relay(tx: Tx, values: NewRelay) -> None:
    """Claim the name (a taken one is a Conflict) and store the relay."""
    await domains.claim_name(tx, values["name"], "relay")
    await tx.execute(insert(relays).values(**values))


async def update_relay(tx: Tx, name: str, values: RelayChanges) -> None:
    """Change a relay's columns."""
    await tx.execute(update(relays).where(relays.c.name == name).values(**values))


async def delete_relay(tx: Tx, name: str) -> bool:
    """Delete a relay and release its name; False when there was none."""
    gone = await tx.rowcount(delete(relays).where(relays.c.name == name))
    if gone:
        await domains.release_names(tx, [name])
    return gone > 0
