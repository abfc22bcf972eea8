"""Mailboxes whose password lives in an LDAP directory (``users.auth_source = 'ldap'``).

What provisioning and the per-login synchronisation (mailroom.auth.provisioning) read and
write: the limits of a mail domain, a new directory user, the attributes and roles the
directory decides, and aliases made from the directory's further addresses.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select, update

from mailroom.domain.directory import DIRECTORY_SOURCE, NO_PASSWORD
from mailroom.store import addresses, aliases, domains, users
from mailroom.store.engine import Query, Tx
from mailroom.store.schema import aliases as aliases_table
from mailroom.store.schema import domains as domains_table
from mailroom.store.schema import managers
from mailroom.store.schema import users as users_table


@dataclass(frozen=True, slots=True)
class MailDomain:
    name: str
    max_users: int | None
    max_quota_bytes: int | None


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """What the directory decides about a mailbox, as stored now."""

    id: int
    email: str
    auth_source: str
    display_name: str
    quota_bytes: int
    global_admin: bool
    managed: frozenset[str]


_DOMAIN = select(domains_table.c.name, domains_table.c.max_users, domains_table.c.max_quota_bytes).where(
    domains_table.c.name == bindparam("name")
)
_USER = Query(
    select(
        users_table.c.id,
        users_table.c.email,
        users_table.c.auth_source,
        users_table.c.display_name,
        users_table.c.quota_bytes,
        users_table.c.global_admin,
    ).where(users_table.c.email == bindparam("email"))
)
_MANAGED = Query(select(managers.c.domain).where(managers.c.user_id == bindparam("user_id")))
_SOURCE = Query(select(users_table.c.auth_source).where(users_table.c.email == bindparam("email")))


async def auth_source(tx: Tx, email: str) -> str | None:
    """``"local"`` or ``"ldap"`` for an existing user, None for no such user."""
    source: str | None = await tx.scalar(_SOURCE, {"email": email})
    return source


async def mail_domain(tx: Tx, name: str) -> MailDomain | None:
    """A mail domain (not an alternative name, not a relay) with its limits."""
    row = await tx.first(_DOMAIN, {"name": name})
    if row is None:
        return None
    return MailDomain(row["name"], row["max_users"], row["max_quota_bytes"])


async def lock_mail_domain(tx: Tx, name: str) -> MailDomain | None:
    """A mail domain (not an alternative name, not a relay) with its limits, locked for this
    transaction on PostgreSQL so that concurrent provisioning counts users in turn."""
    row = await tx.first(_DOMAIN.with_for_update(), {"name": name})
    if row is None:
        return None
    return MailDomain(row["name"], row["max_users"], row["max_quota_bytes"])


async def user(tx: Tx, email: str) -> DirectoryUser | None:
    row = await tx.first(_USER, {"email": email})
    if row is None:
        return None
    managed = frozenset(await tx.scalars(_MANAGED, {"user_id": row["id"]}))
    return DirectoryUser(
        id=row["id"],
        email=row["email"],
        auth_source=row["auth_source"],
        display_name=row["display_name"],
        quota_bytes=row["quota_bytes"],
        global_admin=bool(row["global_admin"]),
        managed=managed,
    )


async def user_count(tx: Tx, domain: str) -> int:
    return await users.count(tx, domain)


async def create_user(
    tx: Tx, *, email: str, domain: str, display_name: str, quota_bytes: int, now: datetime
) -> None:
    """A new enabled mailbox checked by the directory; a taken address is a Conflict."""
    await users.insert_user(
        tx,
        {
            "email": email,
            "domain": domain,
            "password_hash": NO_PASSWORD,
            "auth_source": DIRECTORY_SOURCE,
            "display_name": display_name,
            "quota_bytes": quota_bytes,
            "quota_bytes_used": 0,
            "forward_destinations": [],
            "created_at": now,
            "updated_at": now,
        },
    )


async def update_user(
    tx: Tx,
    user_id: int,
    *,
    now: datetime,
    display_name: str | None = None,
    quota_bytes: int | None = None,
    global_admin: bool | None = None,
) -> None:
    """Set the attributes given (None: unchanged)."""
    values: dict[str, object] = {"updated_at": now}
    if display_name is not None:
        values["display_name"] = display_name
    if quota_bytes is not None:
        values["quota_bytes"] = quota_bytes
    if global_admin is not None:
        values["global_admin"] = global_admin
    await tx.execute(update(users_table).where(users_table.c.id == user_id).values(**values))


async def set_managed(tx: Tx, user_id: int, domains_now: Collection[str], now: datetime) -> None:
    """Make the user manage exactly ``domains_now`` (existing mail domains only)."""
    wanted = set(domains_now)
    held = set(await tx.scalars(_MANAGED, {"user_id": user_id}))
    gone = held - wanted
    if gone:
        await tx.execute(
            delete(managers).where(managers.c.user_id == user_id, managers.c.domain.in_(sorted(gone)))
        )
    for name in sorted(wanted - held):
        if await domains.name_kind(tx, name) == "domain":
            await tx.execute(insert(managers).values(domain=name, user_id=user_id, created_at=now))


async def add_alias(tx: Tx, address: str, domain: str, destination: str, now: datetime) -> bool:
    """Make ``address`` an alias of ``destination`` (marked as made by the directory for
    it) when it is free and ``domain`` is a mail domain; False (nothing done) otherwise."""
    if await domains.name_kind(tx, domain) != "domain" or await addresses.kind_of(tx, address) is not None:
        return False
    await aliases.insert_alias(
        tx,
        {
            "address": address,
            "domain": domain,
            "destinations": [destination],
            "wildcard": False,
            "comment": "from the LDAP directory",
            "created_at": now,
            "updated_at": now,
            "directory_user": destination,
        },
    )
    return True


_DIRECTORY_ALIASES = Query(
    select(aliases_table.c.address)
    .where(aliases_table.c.directory_user == bindparam("email"))
    .order_by(aliases_table.c.address)
)


async def directory_aliases(tx: Tx, email: str) -> list[str]:
    """The aliases the directory made for ``email`` (and nobody changed since)."""
    return list(await tx.scalars(_DIRECTORY_ALIASES, {"email": email}))


async def remove_alias(tx: Tx, address: str, email: str) -> bool:
    """Delete ``address`` if it is an alias the directory made for ``email``; False otherwise."""
    gone = await tx.rowcount(
        delete(aliases_table).where(
            aliases_table.c.address == address, aliases_table.c.directory_user == email
        )
    )
    if gone:
        await addresses.release(tx, address, "alias")
    return gone > 0
