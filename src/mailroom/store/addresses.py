"""The ``addresses`` table: every local address has one holder, a user or an alias.

The one module that reads and writes it; the users and aliases repositories claim and
release their addresses through it, so the uniqueness rule lives in one place.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import bindparam, delete, select
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import ScalarSelect

from mailroom.store._prepared import insert_query
from mailroom.store.engine import Query, Tx
from mailroom.store.schema import addresses

Holder = Literal["user", "alias"]

_KIND = Query(select(addresses.c.kind).where(addresses.c.address == bindparam("address")))
_INSERT = insert_query(addresses)
_DELETE = delete(addresses).where(
    addresses.c.address == bindparam("address"), addresses.c.kind == bindparam("kind")
)


def holder_column(address: BindParameter[str]) -> ScalarSelect[str]:
    """Who holds ``address`` (as :func:`kind_of` answers), as a column of a larger read."""
    return select(addresses.c.kind).where(addresses.c.address == address).scalar_subquery()


async def kind_of(tx: Tx, address: str) -> str | None:
    """Who holds ``address``: ``"user"``, ``"alias"``, or None when it is free."""
    kind: str | None = await tx.scalar(_KIND, {"address": address})
    return kind


async def claim(tx: Tx, address: str, kind: Holder, domain: str) -> None:
    """Take ``address`` for a user or an alias; a taken one is a Conflict (primary key)."""
    await tx.run(_INSERT, {"address": address, "kind": kind, "domain": domain})


async def release(tx: Tx, address: str, kind: Holder) -> None:
    await tx.execute(_DELETE, {"address": address, "kind": kind})
