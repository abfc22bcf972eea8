"""Repository of aliases. Each alias also holds its address in ``addresses`` (kind "alias"),
which makes an address unique across users and aliases."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import NotRequired, TypedDict

from sqlalchemy import bindparam, delete, func, select, update

from mailroom.store import addresses
from mailroom.store import domains as domains_store
from mailroom.store._prepared import insert_query
from mailroom.store.engine import Query, Tx
from mailroom.store.filtering import containing
from mailroom.store.schema import aliases, domains
from mailroom.store.sorting import order_by


@dataclass(frozen=True, slots=True)
class AliasRecord:
    """An alias as stored; a wildcard alias's address is its pattern (``*@example.org``)."""

    address: str
    destinations: list[str]
    wildcard: bool
    comment: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CreationState:
    """What creating an alias depends on, read at once (see :func:`before_create`)."""

    #: ``"domain"``, ``"alternative"``, ``"relay"`` or None, as ``domains.name_kind``.
    domain_kind: str | None
    #: Who holds the address already, as ``addresses.kind_of`` (None: free).
    holder: str | None
    #: The domain's limit, unlocked (see :func:`alias_limit`).
    max_aliases: int | None


_COLUMNS = [aliases.c[name] for name in AliasRecord.__dataclass_fields__]


# Built once: statements built per call cost more than the SQLite work they ask for.
_LIMIT = Query(select(domains.c.max_aliases).where(domains.c.name == bindparam("domain")).with_for_update())
_GET = Query(select(*_COLUMNS).where(aliases.c.address == bindparam("address")))
_INSERT_ALIAS = insert_query(aliases)
_COUNT = Query(select(func.count()).select_from(aliases).where(aliases.c.domain == bindparam("domain")))
_BEFORE_CREATE = Query(
    select(
        domains_store.kind_select(bindparam("domain")).scalar_subquery().label("domain_kind"),
        addresses.holder_column(bindparam("address")).label("holder"),
        select(domains.c.max_aliases)
        .where(domains.c.name == bindparam("domain"))
        .scalar_subquery()
        .label("max_aliases"),
    )
)


async def before_create(tx: Tx, address: str, domain: str) -> CreationState:
    """What creating an alias at ``address`` in ``domain`` depends on, in one read."""
    rows = await tx.all(_BEFORE_CREATE, {"address": address, "domain": domain})
    return CreationState(**rows[0])  # a SELECT without FROM has one row


async def alias_limit(tx: Tx, domain: str, *, known: CreationState | None = None) -> int | None:
    """The domain's ``max_aliases``, locking the domain's row (PostgreSQL) so that concurrent
    creations count each other. SQLite writers are serialised anyway: there the value that
    :func:`before_create` read in this transaction (``known``) is still current."""
    if known is not None and tx.dialect == "sqlite":
        return known.max_aliases
    limit: int | None = await tx.scalar(_LIMIT, {"domain": domain})
    return limit


async def count(tx: Tx, domain: str) -> int:
    """How many aliases ``domain`` has."""
    return int(await tx.scalar(_COUNT, {"domain": domain}) or 0)


async def get(tx: Tx, address: str) -> AliasRecord | None:
    """One alias by its (normalised) address."""
    row = await tx.first(_GET, {"address": address})
    return AliasRecord(**row) if row is not None else None


async def page(
    tx: Tx,
    *,
    domains_in: Collection[str] | None,
    offset: int,
    limit: int,
    sort: str = "address",
    q: str | None = None,
) -> tuple[list[AliasRecord], int]:
    """Aliases ordered by address, optionally only those of ``domains_in`` and those whose
    address contains ``q``, and their total."""
    query = select(*_COLUMNS)
    count = select(func.count()).select_from(aliases)
    if domains_in is not None:
        query = query.where(aliases.c.domain.in_(list(domains_in)))
        count = count.where(aliases.c.domain.in_(list(domains_in)))
    if q is not None:
        query = query.where(containing(q, aliases.c.address))
        count = count.where(containing(q, aliases.c.address))
    terms = order_by(aliases.c, sort, aliases.c.address)
    rows = await tx.all(query.order_by(*terms).offset(offset).limit(limit))
    return [AliasRecord(**row) for row in rows], int(await tx.scalar(count) or 0)


class NewAlias(TypedDict):
    """The columns :func:`insert_alias` writes; those left out take their defaults."""

    address: str
    domain: str
    destinations: list[str]
    wildcard: NotRequired[bool]
    comment: NotRequired[str]
    created_at: datetime
    updated_at: datetime
    #: The directory user LDAP provisioning made it for (store/directory.py).
    directory_user: NotRequired[str | None]


class AliasChanges(TypedDict, total=False):
    """The columns :func:`update_alias` may change (any subset)."""

    destinations: list[str]
    comment: str
    updated_at: datetime
    #: None: an administrator took over an alias the directory made.
    directory_user: str | None


async def insert_alias(tx: Tx, values: NewAlias) -> None:
    """Claim the address (a taken one is a Conflict) and store the alias."""
    await addresses.claim(tx, values["address"], "alias", values["domain"])
    await tx.run(_INSERT_ALIAS, values)


async def update_alias(tx: Tx, address: str, values: AliasChanges) -> None:
    """Change an alias's columns."""
    await tx.execute(update(aliases).where(aliases.c.address == address).values(**values))


async def delete_alias(tx: Tx, address: str) -> bool:
    """Delete an alias and release its address; False when there was none."""
    gone = await tx.rowcount(delete(aliases).where(aliases.c.address == address))
    if gone:
        await addresses.release(tx, address, "alias")
    return gone > 0
