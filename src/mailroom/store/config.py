"""Bulk reads for the configuration export and import: every row of every admin table.

These read secrets (password hashes, DKIM private keys) because an export may be asked to
carry them and an import compares against them; ``services.admin.config`` decides what
leaves the server. Writes go through the per-object repositories, except the one they lack.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from mailroom.store.engine import Row, Tx
from mailroom.store.schema import aliases, alternatives, domains, managers, relays, users


async def all_domains(tx: Tx, *, lock: bool = False) -> list[Row]:
    """Every domain by name, DKIM private key included.

    ``lock`` locks the rows for the write transaction (PostgreSQL ``FOR UPDATE``), so that
    the limit checks of concurrent calls take turns with an import; SQLite's write
    transactions take turns anyway.
    """
    query = select(domains).order_by(domains.c.name)
    return await tx.all(query.with_for_update() if lock else query)


async def all_alternatives(tx: Tx) -> list[Row]:
    return await tx.all(select(alternatives).order_by(alternatives.c.name))


async def all_relays(tx: Tx) -> list[Row]:
    return await tx.all(select(relays).order_by(relays.c.name))


async def all_users(tx: Tx) -> list[Row]:
    """Every user by address, ``id`` and ``password_hash`` included."""
    return await tx.all(select(users).order_by(users.c.email))


async def all_aliases(tx: Tx) -> list[Row]:
    return await tx.all(select(aliases).order_by(aliases.c.address))


async def all_managers(tx: Tx) -> list[Row]:
    """``{domain, email, user_id}`` for every manager, by domain then address."""
    query = (
        select(managers.c.domain, users.c.email, managers.c.user_id)
        .select_from(managers.join(users, users.c.id == managers.c.user_id))
        .order_by(managers.c.domain, users.c.email)
    )
    return await tx.all(query)


async def update_alternative(tx: Tx, name: str, values: dict[str, Any]) -> None:
    """Move an alternative name to another domain or change its comment."""
    await tx.execute(update(alternatives).where(alternatives.c.name == name).values(**values))
