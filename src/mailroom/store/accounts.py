"""Look-ups authentication needs: a user by address or id, and the domains they manage."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam, select, update

from mailroom.store.engine import Query, Tx
from mailroom.store.schema import managers, users


@dataclass(frozen=True, slots=True)
class AuthUser:
    """What authenticating a user needs, the password hash included (kept out of ``repr``)."""

    id: int
    email: str
    domain: str
    enabled: bool
    global_admin: bool
    password_hash: str = field(repr=False)
    auth_source: str


@dataclass(frozen=True, slots=True)
class DovecotUser:
    """What Dovecot's passdb and userdb need of a mailbox."""

    id: int
    email: str
    enabled: bool
    password_hash: str = field(repr=False)
    quota_bytes: int
    enable_imap: bool
    enable_pop: bool


_AUTH_COLS = [users.c[name] for name in AuthUser.__dataclass_fields__]


_BY_EMAIL = Query(select(*_AUTH_COLS).where(users.c.email == bindparam("email")))
_BY_ID = Query(select(*_AUTH_COLS).where(users.c.id == bindparam("user_id")))
_MANAGED = Query(select(managers.c.domain).where(managers.c.user_id == bindparam("user_id")))


async def user_for_auth(tx: Tx, *, email: str | None = None, user_id: int | None = None) -> AuthUser | None:
    """A user by address or by id, with what authentication needs."""
    if email is not None:
        row = await tx.first(_BY_EMAIL, {"email": email})
    else:
        row = await tx.first(_BY_ID, {"user_id": user_id})
    return AuthUser(**row) if row is not None else None


async def managed_domains(tx: Tx, user_id: int) -> frozenset[str]:
    return frozenset(await tx.scalars(_MANAGED, {"user_id": user_id}))


async def set_password_hash(tx: Tx, user_id: int, password_hash: str) -> None:
    await tx.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))


_SERVICES = Query(
    select(users.c.enabled, users.c.enable_smtp, users.c.enable_imap, users.c.enable_pop).where(
        users.c.id == bindparam("user_id")
    )
)


async def enabled_services(tx: Tx, user_id: int) -> frozenset[str]:
    """Which of ``smtp``, ``imap`` and ``pop3`` the user may log in to (none when disabled)."""
    row = await tx.first(_SERVICES, {"user_id": user_id})
    if row is None or not row["enabled"]:
        return frozenset()
    flags = {"smtp": row["enable_smtp"], "imap": row["enable_imap"], "pop3": row["enable_pop"]}
    return frozenset(name for name, on in flags.items() if on)


_DOVECOT_COLUMNS = [users.c[name] for name in DovecotUser.__dataclass_fields__]
_DOVECOT_USER = Query(select(*_DOVECOT_COLUMNS).where(users.c.email == bindparam("email")))
_DOVECOT_USERS = Query(
    select(*_DOVECOT_COLUMNS)
    .where(users.c.enabled.is_(True), users.c.email > bindparam("after"))
    .order_by(users.c.email)
    .limit(bindparam("limit"))
)


async def dovecot_user(tx: Tx, email: str) -> DovecotUser | None:
    """What Dovecot's passdb and userdb need of a mailbox."""
    row = await tx.first(_DOVECOT_USER, {"email": email})
    return DovecotUser(**row) if row is not None else None


async def dovecot_users(tx: Tx, *, after: str, limit: int) -> list[DovecotUser]:
    """Enabled mailboxes by address, the next ``limit`` after ``after`` (user iteration)."""
    return [DovecotUser(**row) for row in await tx.all(_DOVECOT_USERS, {"after": after, "limit": limit})]


async def set_quota_used(tx: Tx, email: str, used_bytes: int) -> bool:
    """Record the storage a mailbox uses as Dovecot counted it; False when there is none."""
    stmt = update(users).where(users.c.email == email).values(quota_bytes_used=used_bytes)
    return await tx.rowcount(stmt) > 0
