"""Repository of second factors (TOTP, recovery codes) and app passwords.

Secrets are never kept in clear: the TOTP secret is stored encrypted by the caller, recovery
codes and app passwords as SHA-256 digests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

from sqlalchemy import bindparam, delete, insert, or_, select, update

from mailroom.store.engine import Query, Tx
from mailroom.store.identity_schema import app_passwords, totp_recovery_codes, user_totp


@dataclass(frozen=True, slots=True)
class TotpRecord:
    """A user's TOTP set-up; the secret stays encrypted (and out of ``repr``)."""

    user_id: int
    secret_encrypted: str = field(repr=False)
    enabled: bool
    created_at: datetime
    confirmed_at: datetime | None
    last_step: int | None


@dataclass(frozen=True, slots=True)
class AppPasswordRecord:
    """An app password as its owner sees it: no digest."""

    id: str
    name: str
    protocols: list[str]
    created_at: datetime
    last_used_at: datetime | None
    last_ip: str | None


@dataclass(frozen=True, slots=True)
class AppPasswordCredential:
    """What a login with an app password needs, its digest included (kept out of ``repr``)."""

    id: str
    user_id: int
    protocols: list[str]
    digest: str = field(repr=False)
    last_used_at: datetime | None
    last_ip: str | None


# -- TOTP ----------------------------------------------------------------------------------

_TOTP = Query(
    select(*[user_totp.c[name] for name in TotpRecord.__dataclass_fields__]).where(
        user_totp.c.user_id == bindparam("user_id")
    )
)
_TOTP_ON = Query(
    select(user_totp.c.user_id).where(user_totp.c.user_id == bindparam("user_id"), user_totp.c.enabled)
)


async def totp(tx: Tx, user_id: int) -> TotpRecord | None:
    """The user's TOTP set-up (started or enabled), or None."""
    row = await tx.first(_TOTP, {"user_id": user_id})
    return TotpRecord(**row) if row is not None else None


async def totp_enabled(tx: Tx, user_id: int) -> bool:
    """Whether logins of this user need a second factor (one primary-key look-up)."""
    return await tx.first(_TOTP_ON, {"user_id": user_id}) is not None


async def start_totp(tx: Tx, user_id: int, secret_encrypted: str, now: datetime) -> None:
    """Begin (or restart) a set-up: a new secret, not yet enabled; old recovery codes go."""
    await tx.execute(delete(user_totp).where(user_totp.c.user_id == user_id))
    await tx.execute(delete(totp_recovery_codes).where(totp_recovery_codes.c.user_id == user_id))
    await tx.execute(
        insert(user_totp).values(
            user_id=user_id, secret_encrypted=secret_encrypted, enabled=False, created_at=now
        )
    )


async def enable_totp(
    tx: Tx, user_id: int, step: int, now: datetime, recovery_digests: Sequence[str]
) -> None:
    await tx.execute(
        update(user_totp)
        .where(user_totp.c.user_id == user_id)
        .values(enabled=True, confirmed_at=now, last_step=step)
    )
    await tx.execute(delete(totp_recovery_codes).where(totp_recovery_codes.c.user_id == user_id))
    if recovery_digests:
        await tx.execute(
            insert(totp_recovery_codes), [{"user_id": user_id, "digest": d} for d in recovery_digests]
        )


async def use_step(tx: Tx, user_id: int, step: int) -> bool:
    """Record ``step`` as used; False when it (or a later one) was used already (a replay)."""
    stmt = (
        update(user_totp)
        .where(
            user_totp.c.user_id == user_id,
            or_(user_totp.c.last_step.is_(None), user_totp.c.last_step < step),
        )
        .values(last_step=step)
    )
    return await tx.rowcount(stmt) == 1


async def remove_totp(tx: Tx, user_id: int) -> bool:
    """Turn the second factor off and forget its secret and codes; False when there was none."""
    await tx.execute(delete(totp_recovery_codes).where(totp_recovery_codes.c.user_id == user_id))
    return await tx.rowcount(delete(user_totp).where(user_totp.c.user_id == user_id)) > 0


async def use_recovery_code(tx: Tx, user_id: int, digest: str, now: datetime) -> bool:
    """Spend the unused recovery code with this digest; False when there is none."""
    stmt = (
        update(totp_recovery_codes)
        .where(
            totp_recovery_codes.c.user_id == user_id,
            totp_recovery_codes.c.digest == digest,
            totp_recovery_codes.c.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return await tx.rowcount(stmt) > 0


async def recovery_codes_left(tx: Tx, user_id: int) -> int:
    rows = await tx.scalars(
        select(totp_recovery_codes.c.id).where(
            totp_recovery_codes.c.user_id == user_id, totp_recovery_codes.c.used_at.is_(None)
        )
    )
    return len(rows)


# -- app passwords -------------------------------------------------------------------------

_APP_PUBLIC = [app_passwords.c[name] for name in AppPasswordRecord.__dataclass_fields__]
_APP_FOR_AUTH = Query(
    select(*[app_passwords.c[name] for name in AppPasswordCredential.__dataclass_fields__]).where(
        app_passwords.c.id == bindparam("id")
    )
)


class NewAppPassword(TypedDict):
    """The columns :func:`insert_app_password` writes (never used yet, so no last use)."""

    id: str
    user_id: int
    name: str
    protocols: Sequence[str]
    digest: str
    created_at: datetime


async def insert_app_password(tx: Tx, values: NewAppPassword) -> None:
    await tx.execute(insert(app_passwords).values(**values))


async def app_password_exists(tx: Tx, lookup_id: str) -> bool:
    return await tx.first(select(app_passwords.c.id).where(app_passwords.c.id == lookup_id)) is not None


async def app_passwords_of(tx: Tx, user_id: int) -> list[AppPasswordRecord]:
    """The user's app passwords (no digest), oldest first."""
    rows = await tx.all(
        select(*_APP_PUBLIC)
        .where(app_passwords.c.user_id == user_id)
        .order_by(app_passwords.c.created_at, app_passwords.c.id)
    )
    return [AppPasswordRecord(**row) for row in rows]


async def app_password_for_auth(tx: Tx, lookup_id: str) -> AppPasswordCredential | None:
    """An app password with its digest, for checking a presented secret."""
    row = await tx.first(_APP_FOR_AUTH, {"id": lookup_id})
    return AppPasswordCredential(**row) if row is not None else None


async def touch_app_password(tx: Tx, lookup_id: str, now: datetime, client_ip: str | None) -> None:
    await tx.execute(
        update(app_passwords)
        .where(app_passwords.c.id == lookup_id)
        .values(last_used_at=now, last_ip=client_ip)
    )


async def delete_app_password(tx: Tx, lookup_id: str, user_id: int) -> bool:
    stmt = delete(app_passwords).where(app_passwords.c.id == lookup_id, app_passwords.c.user_id == user_id)
    return await tx.rowcount(stmt) > 0
