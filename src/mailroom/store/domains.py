"""Repository of mail domains and of the shared ``domain_names`` registry."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import NotRequired, TypedDict

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.sql.elements import BindParameter

from mailroom.store.engine import Query, Tx
from mailroom.store.filtering import containing
from mailroom.store.schema import addresses, aliases, alternatives, domain_names, domains, users
from mailroom.store.sorting import order_by


@dataclass(frozen=True, slots=True)
class DomainRecord:
    """A mail domain as stored, without its DKIM private key (read that with store.dkim)."""

    name: str
    comment: str
    max_users: int | None
    max_aliases: int | None
    max_quota_bytes: int | None
    signup_enabled: bool
    dkim_selector: str | None
    dkim_public_key: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DomainUsage:
    """How much of its limits a domain uses."""

    users: int
    aliases: int


_PUBLIC = [domains.c[name] for name in DomainRecord.__dataclass_fields__]


async def claim_name(tx: Tx, name: str, kind: str) -> None:
    """Reserve ``name`` for a domain, an alternative or a relay; a taken name is a Conflict."""
    await tx.execute(insert(domain_names).values(name=name, kind=kind))


async def release_names(tx: Tx, names: Collection[str]) -> None:
    if names:
        await tx.execute(delete(domain_names).where(domain_names.c.name.in_(list(names))))


def kind_select(name: BindParameter[str]) -> Select[tuple[str]]:
    """What kind of name ``name`` is: ``domain``, ``alternative`` or ``relay`` (no row: free)."""
    return select(domain_names.c.kind).where(domain_names.c.name == name)


async def name_kind(tx: Tx, name: str) -> str | None:
    kind: str | None = await tx.scalar(_KIND, {"name": name})
    return kind


_GET = Query(select(*_PUBLIC).where(domains.c.name == bindparam("name")))
_KIND = Query(kind_select(bindparam("name")))


async def get(tx: Tx, name: str) -> DomainRecord | None:
    """A domain without its DKIM private key (read that with store.dkim)."""
    row = await tx.first(_GET, {"name": name})
    return DomainRecord(**row) if row is not None else None


async def lock(tx: Tx, name: str) -> DomainRecord | None:
    """The domain row, locked for this write transaction (PostgreSQL ``FOR UPDATE``).

    Limit checks count rows and then write; the lock makes concurrent changes to one domain
    take turns. SQLite's write transactions already take turns.
    """
    row = await tx.first(select(*_PUBLIC).where(domains.c.name == name).with_for_update())
    return DomainRecord(**row) if row is not None else None


async def page(
    tx: Tx,
    *,
    only: Collection[str] | None,
    offset: int,
    limit: int,
    sort: str = "name",
    q: str | None = None,
) -> tuple[list[DomainRecord], int]:
    """Domains ordered by name (or ``sort``), only those in ``only`` unless it is None and
    those whose name contains ``q``; and their total."""
    query = select(*_PUBLIC)
    count = select(func.count()).select_from(domains)
    if only is not None:
        query = query.where(domains.c.name.in_(list(only)))
        count = count.where(domains.c.name.in_(list(only)))
    if q is not None:
        query = query.where(containing(q, domains.c.name))
        count = count.where(containing(q, domains.c.name))
    terms = order_by(domains.c, sort, domains.c.name)
    rows = await tx.all(query.order_by(*terms).offset(offset).limit(limit))
    return [DomainRecord(**row) for row in rows], int(await tx.scalar(count) or 0)


class NewDomain(TypedDict):
    """The columns :func:`insert_domain` writes; those left out take their defaults."""

    name: str
    comment: NotRequired[str]
    max_users: NotRequired[int | None]
    max_aliases: NotRequired[int | None]
    max_quota_bytes: NotRequired[int | None]
    signup_enabled: NotRequired[bool]
    dkim_selector: NotRequired[str | None]
    dkim_private_key: NotRequired[str | None]
    dkim_public_key: NotRequired[str | None]
    created_at: datetime
    updated_at: datetime


class DomainChanges(TypedDict, total=False):
    """The columns :func:`update_domain` may change (any subset)."""

    comment: str
    max_users: int | None
    max_aliases: int | None
    max_quota_bytes: int | None
    signup_enabled: bool
    dkim_selector: str | None
    dkim_private_key: str | None
    dkim_public_key: str | None
    updated_at: datetime


async def insert_domain(tx: Tx, values: NewDomain) -> None:
    await claim_name(tx, values["name"], "domain")
    await tx.execute(insert(domains).values(**values))


async def update_domain(tx: Tx, name: str, values: DomainChanges) -> None:
    await tx.execute(update(domains).where(domains.c.name == name).values(**values))


async def delete_domain(tx: Tx, name: str) -> bool:
    """Delete a domain with everything in it (users, aliases, alternatives, managers, keys)."""
    alt_names = await tx.scalars(select(alternatives.c.name).where(alternatives.c.domain == name))
    # Mail rows reference users; deleting users one level down lets their own cascades run.
    await tx.execute(delete(users).where(users.c.domain == name))
    await tx.execute(delete(aliases).where(aliases.c.domain == name))
    await tx.execute(delete(addresses).where(addresses.c.domain == name))
    gone = await tx.rowcount(delete(domains).where(domains.c.name == name))
    await release_names(tx, [*alt_names, name])
    return gone > 0


async def usage(tx: Tx, name: str) -> DomainUsage:
    """How much of its limits a domain uses: users, aliases."""
    n_users = await tx.scalar(select(func.count()).select_from(users).where(users.c.domain == name))
    n_aliases = await tx.scalar(select(func.count()).select_from(aliases).where(aliases.c.domain == name))
    return DomainUsage(users=int(n_users or 0), aliases=int(n_aliases or 0))


async def max_user_quota(tx: Tx, name: str) -> int:
    value = await tx.scalar(select(func.max(users.c.quota_bytes)).where(users.c.domain == name))
    return int(value or 0)


async def exists_any(tx: Tx, name: str) -> bool:
    """Whether ``name`` is a domain, an alternative or a relay (used by MTA lookups too)."""
    return await name_kind(tx, name) is not None
