"""Bulk reads for the configuration export and import: every row of every admin table.

These read secrets (password hashes, DKIM private keys) because an export may be asked to
carry them and an import compares against them; ``services.admin.config`` decides what
leaves the server. Writes go through the per-object repositories, except the one they lack.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Column, Table, select, update

from mailroom.store.aliases import AliasRecord
from mailroom.store.alternatives import AlternativeRecord
from mailroom.store.engine import Tx
from mailroom.store.relays import RelayRecord
from mailroom.store.schema import aliases, alternatives, domains, managers, relays, users
from mailroom.store.users import UserRecord


@dataclass(frozen=True, slots=True)
class StoredDomain:
    """A domain with its DKIM key pair (the private half kept out of ``repr``)."""

    name: str
    comment: str
    max_users: int | None
    max_aliases: int | None
    max_quota_bytes: int | None
    signup_enabled: bool
    dkim_selector: str | None
    dkim_private_key: str | None = field(repr=False)
    dkim_public_key: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredUser(UserRecord):
    """A user with the password hash (kept out of ``repr``)."""

    password_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class StoredManager:
    """A manager of a domain: the user's address and id."""

    domain: str
    email: str
    user_id: int


def _columns(table: Table, record: Any) -> list[Column[Any]]:
    """The columns of ``table`` named like the fields of the dataclass ``record``."""
    return [table.c[f.name] for f in fields(record)]


async def all_domains(tx: Tx, *, lock: bool = False) -> list[StoredDomain]:
    """Every domain by name, DKIM private key included.

    ``lock`` locks the rows for the write transaction (PostgreSQL ``FOR UPDATE``), so that
    the limit checks of concurrent calls take turns with an import; SQLite's write
    transactions take turns anyway.
    """
    query = select(*_columns(domains, StoredDomain)).order_by(domains.c.name)
    return [StoredDomain(**row) for row in await tx.all(query.with_for_update() if lock else query)]


async def all_alternatives(tx: Tx) -> list[AlternativeRecord]:
    query = select(*_columns(alternatives, AlternativeRecord)).order_by(alternatives.c.name)
    return [AlternativeRecord(**row) for row in await tx.all(query)]


async def all_relays(tx: Tx) -> list[RelayRecord]:
    query = select(*_columns(relays, RelayRecord)).order_by(relays.c.name)
    return [RelayRecord(**row) for row in await tx.all(query)]


async def all_users(tx: Tx) -> list[StoredUser]:
    """Every user by address, ``id`` and ``password_hash`` included."""
    query = select(*_columns(users, StoredUser)).order_by(users.c.email)
    return [StoredUser(**row) for row in await tx.all(query)]


async def all_aliases(tx: Tx) -> list[AliasRecord]:
    query = select(*_columns(aliases, AliasRecord)).order_by(aliases.c.address)
    return [AliasRecord(**row) for row in await tx.all(query)]


async def all_managers(tx: Tx) -> list[StoredManager]:
    """Every manager, by domain then address."""
    query = (
        select(managers.c.domain, users.c.email, managers.c.user_id)
        .select_from(managers.join(users, users.c.id == managers.c.user_id))
        .order_by(managers.c.domain, users.c.email)
    )
    return [StoredManager(**row) for row in await tx.all(query)]


class AlternativeChanges(TypedDict, total=False):
    """The columns :func:`update_alternative` may change (alternatives have no updated_at)."""

    domain: str
    comment: str


async def update_alternative(tx: Tx, name: str, values: AlternativeChanges) -> None:
    """Move an alternative name to another domain or change its comment."""
    await tx.execute(update(alternatives).where(alternatives.c.name == name).values(**values))
