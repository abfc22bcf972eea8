"""Repository of users (mailboxes).

Rows never carry ``password_hash``: reading it is for authentication alone, in
:mod:`mailroom.store.accounts`. Writing it (create, password change) goes through here.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, func, insert, select, update

from mailroom.domain.users import User
from mailroom.store import addresses
from mailroom.store.engine import Query, Row, Tx
from mailroom.store.json_render import model_columns, render_rows
from mailroom.store.schema import domains, users

_PUBLIC = [c for c in users.c if c.name != "password_hash"]


async def lock_domain(tx: Tx, name: str) -> Row | None:
    """The limits of a domain (``name``, ``max_users``, ``max_quota_bytes``), locked for this transaction.

    On PostgreSQL the row lock (``FOR UPDATE``) makes concurrent user creations in one domain
    take turns, so two of them cannot both count the users, both see room, and both insert.
    SQLite has no row locks and needs none: its write transactions already take turns.
    """
    query = select(domains.c.name, domains.c.max_users, domains.c.max_quota_bytes).where(
        domains.c.name == name
    )
    return await tx.first(query.with_for_update())


_INSERT_USER = insert(users)
# Prepared: reading one user and listing users are the admin API's hottest paths.
_GET = Query(select(*_PUBLIC).where(users.c.email == bindparam("email")))
_COUNT_ALL = Query(select(func.count()).select_from(users))


async def get(tx: Tx, email: str) -> Row | None:
    """One user by address, without the password hash."""
    return await tx.first(_GET, {"email": email})


# A page of users as the API shows them, serialised without models (store/json_render.py).
_USER_FIELDS = model_columns(User, users)
_PAGE_ALL = Query(
    select(*_USER_FIELDS).order_by(users.c.email).limit(bindparam("limit")).offset(bindparam("offset"))
)


async def page_rendered(
    tx: Tx, *, domains: Collection[str] | None, offset: int, limit: int
) -> tuple[orjson.Fragment, int]:
    """Users ordered by address, limited to ``domains`` unless it is None, as a JSON array of
    :class:`User` objects (no password hash: it is not a field); and their total."""
    if domains is None:
        rows = await tx.all(_PAGE_ALL, {"offset": offset, "limit": limit})
        return render_rows(rows), int(await tx.scalar(_COUNT_ALL) or 0)
    where = users.c.domain.in_(list(domains))
    rows = await tx.all(
        select(*_USER_FIELDS).where(where).order_by(users.c.email).offset(offset).limit(limit)
    )
    return render_rows(rows), int(await tx.scalar(select(func.count()).select_from(users).where(where)) or 0)


async def count(tx: Tx, domain: str) -> int:
    """How many users a domain has."""
    return int(await tx.scalar(select(func.count()).select_from(users).where(users.c.domain == domain)) or 0)


async def insert_user(tx: Tx, values: dict[str, Any]) -> None:
    """Claim the address for a user, then create the user; a taken address is a Conflict."""
    await addresses.claim(tx, values["email"], "user", values["domain"])
    await tx.execute(_INSERT_USER, values)


async def update_user(tx: Tx, email: str, values: dict[str, Any]) -> None:
    """Change columns of one user (``password_hash`` included when the password changes)."""
    await tx.execute(update(users).where(users.c.email == email).values(**values))


async def delete_user(tx: Tx, email: str) -> bool:
    """Delete a user and release its address; managers and API keys go by FK cascade."""
    gone = await tx.rowcount(delete(users).where(users.c.email == email))
    if gone:
        await addresses.release(tx, email, "user")
    return gone > 0
