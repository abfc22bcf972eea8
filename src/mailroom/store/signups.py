"""Repository of sign-up state: canonical user names, invites and the waitlist."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

from sqlalchemy import bindparam, delete, func, insert, select, update

from mailroom.store.client_schema import invites, usernames, waitlist
from mailroom.store.engine import Query, Tx
from mailroom.store.schema import addresses, domains, users


@dataclass(frozen=True, slots=True)
class InviteRecord:
    """An invite as managers see it: no digest."""

    id: str
    domain: str
    max_uses: int
    uses: int
    expires_at: datetime | None
    comment: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class InviteCredential:
    """What checking a presented invite token needs, its digest included (out of ``repr``)."""

    id: str
    digest: str = field(repr=False)
    domain: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class WaitlistRecord:
    """A waiting person as managers see it, with their place in the domain's queue."""

    id: int
    domain: str
    canonical: str
    spelling: str
    created_at: datetime
    position: int


@dataclass(frozen=True, slots=True)
class WaitlistApplicant:
    """A waiting person with the password hash admission creates the account with."""

    id: int
    domain: str
    canonical: str
    spelling: str
    password_hash: str = field(repr=False)
    created_at: datetime


_BY_CANONICAL = Query(
    select(users.c.email, users.c.id)
    .select_from(usernames.join(users, users.c.id == usernames.c.user_id))
    .where(usernames.c.domain == bindparam("domain"), usernames.c.canonical == bindparam("canonical"))
)


async def address_for(tx: Tx, domain: str, canonical: str) -> str | None:
    """The mailbox address signed up under ``canonical`` in ``domain``, if any (login path)."""
    email: str | None = await tx.scalar(_BY_CANONICAL, {"domain": domain, "canonical": canonical})
    return email


async def name_taken(tx: Tx, domain: str, canonical: str) -> bool:
    """Whether a signed-up name, a user or an alias of ``domain`` already has this canonical form.

    Users and aliases made by administrators have no ``usernames`` row: their local parts are
    compared with dots removed (addresses are stored lowercase).
    """
    if await tx.first(_BY_CANONICAL, {"domain": domain, "canonical": canonical}) is not None:
        return True
    folded = f"{canonical}@{domain.replace('.', '')}"
    query = select(addresses.c.address).where(
        addresses.c.domain == domain, func.replace(addresses.c.address, ".", "") == folded
    )
    return await tx.first(query.limit(1)) is not None


async def claim_name(tx: Tx, domain: str, canonical: str, spelling: str, user_id: int) -> None:
    """Record a signed-up name; a second claim of one canonical form is a Conflict."""
    await tx.execute(
        insert(usernames).values(domain=domain, canonical=canonical, spelling=spelling, user_id=user_id)
    )


async def first_signup_domain(tx: Tx) -> str | None:
    """The first domain (by name) where sign-up is open."""
    query = select(domains.c.name).where(domains.c.signup_enabled.is_(True)).order_by(domains.c.name)
    name: str | None = await tx.scalar(query.limit(1))
    return name


async def signup_open(tx: Tx, domain: str) -> bool:
    query = select(domains.c.signup_enabled).where(domains.c.name == domain)
    return bool(await tx.scalar(query))


# -- invites -------------------------------------------------------------------------------

_INVITE_PUBLIC = [invites.c[name] for name in InviteRecord.__dataclass_fields__]
_INVITE_AUTH = [invites.c[name] for name in InviteCredential.__dataclass_fields__]


class NewInvite(TypedDict):
    """The columns :func:`insert_invite` writes."""

    id: str
    digest: str
    domain: str
    max_uses: int
    uses: int
    expires_at: datetime | None
    comment: str
    created_by: str
    created_at: datetime


async def insert_invite(tx: Tx, values: NewInvite) -> None:
    await tx.execute(insert(invites).values(**values))


async def delete_expired_invites(tx: Tx, now: datetime) -> int:
    """Delete invites whose time is up (housekeeping); how many rows this call deleted."""
    stmt = delete(invites).where(invites.c.expires_at.is_not(None), invites.c.expires_at <= now)
    return await tx.rowcount(stmt)


async def invite_for_auth(tx: Tx, invite_id: str) -> InviteCredential | None:
    """The invite with its digest, for checking a presented token."""
    row = await tx.first(select(*_INVITE_AUTH).where(invites.c.id == invite_id))
    return InviteCredential(**row) if row is not None else None


async def get_invite(tx: Tx, invite_id: str) -> InviteRecord | None:
    """One invite without its digest."""
    row = await tx.first(select(*_INVITE_PUBLIC).where(invites.c.id == invite_id))
    return InviteRecord(**row) if row is not None else None


async def use_invite(tx: Tx, invite_id: str) -> bool:
    """Count one use, unless the invite is used up (checked in the same statement)."""
    stmt = (
        update(invites)
        .where(invites.c.id == invite_id, invites.c.uses < invites.c.max_uses)
        .values(uses=invites.c.uses + 1)
    )
    return await tx.rowcount(stmt) > 0


async def page_invites(
    tx: Tx, *, domains: Collection[str] | None, offset: int, limit: int
) -> tuple[list[InviteRecord], int]:
    """Invites oldest first, only those of ``domains`` unless it is None; and their total."""
    query = select(*_INVITE_PUBLIC)
    count = select(func.count()).select_from(invites)
    if domains is not None:
        query = query.where(invites.c.domain.in_(list(domains)))
        count = count.where(invites.c.domain.in_(list(domains)))
    rows = await tx.all(query.order_by(invites.c.created_at, invites.c.id).offset(offset).limit(limit))
    return [InviteRecord(**row) for row in rows], int(await tx.scalar(count) or 0)


async def delete_invite(tx: Tx, invite_id: str) -> bool:
    return await tx.rowcount(delete(invites).where(invites.c.id == invite_id)) > 0


# -- waitlist ------------------------------------------------------------------------------

_WAIT_PUBLIC = [waitlist.c[name] for name in WaitlistRecord.__dataclass_fields__ if name != "position"]
_WAIT_ENTRY = [waitlist.c[name] for name in WaitlistApplicant.__dataclass_fields__]


class NewWaitlistEntry(TypedDict):
    """The columns :func:`join_waitlist` writes (the id is generated)."""

    domain: str
    canonical: str
    spelling: str
    password_hash: str
    created_at: datetime


async def join_waitlist(tx: Tx, values: NewWaitlistEntry) -> int:
    """Add an entry; a name already waiting in the domain is a Conflict. Returns its id."""
    return int(await tx.scalar(insert(waitlist).values(**values).returning(waitlist.c.id)))


async def waiting(tx: Tx, domain: str, canonical: str) -> bool:
    query = select(waitlist.c.id).where(waitlist.c.domain == domain, waitlist.c.canonical == canonical)
    return await tx.first(query) is not None


async def position(tx: Tx, entry_id: int, domain: str) -> int:
    """1 for the entry that has waited longest in its domain."""
    query = (
        select(func.count())
        .select_from(waitlist)
        .where(waitlist.c.domain == domain, waitlist.c.id <= entry_id)
    )
    return int(await tx.scalar(query) or 0)


async def waitlist_entry(tx: Tx, entry_id: int) -> WaitlistApplicant | None:
    """An entry with its password hash (admission creates the account with it)."""
    row = await tx.first(select(*_WAIT_ENTRY).where(waitlist.c.id == entry_id))
    return WaitlistApplicant(**row) if row is not None else None


async def page_waitlist(
    tx: Tx, *, domains: Collection[str] | None, offset: int, limit: int
) -> tuple[list[WaitlistRecord], int]:
    """Entries in order of arrival, each with its position in its domain's queue."""
    rank = func.row_number().over(partition_by=waitlist.c.domain, order_by=waitlist.c.id).label("position")
    inner = select(*_WAIT_PUBLIC, rank).subquery()
    query = select(inner)
    count = select(func.count()).select_from(waitlist)
    if domains is not None:
        query = query.where(inner.c.domain.in_(list(domains)))
        count = count.where(waitlist.c.domain.in_(list(domains)))
    rows = await tx.all(query.order_by(inner.c.id).offset(offset).limit(limit))
    return [WaitlistRecord(**row) for row in rows], int(await tx.scalar(count) or 0)


async def leave_waitlist(tx: Tx, entry_id: int) -> bool:
    return await tx.rowcount(delete(waitlist).where(waitlist.c.id == entry_id)) > 0
