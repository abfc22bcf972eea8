"""Repository of second factors (TOTP, recovery codes) and app passwords.

Secrets are never kept in clear: the TOTP secret is stored encrypted by the caller, recovery
codes and app passwords as SHA-256 digests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update

from mailroom.store.engine import Query, Row, Tx
from mailroom.store.identity_schema import app_passwords, totp_recovery_codes, user_totp

# -- TOTP ----------------------------------------------------------------------------------

_TOTP = Query(select(user_totp).where(user_totp.c.user_id == bindparam("user_id")))
_TOTP_ON = Query(
    select(user_totp.c.user_id).where(user_totp.c.user_id == bindparam("user_id"), user_totp.c.enabled)
)


async def totp(tx: Tx, user_id: int) -> Row | None:
    """The user's TOTP row (set up or enabled), or None."""
    return await tx.first(_TOTP, {"user_id": user_id})


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

_APP_PUBLIC = [c for c in app_passwords.c if c.name not in ("digest", "user_id")]
_APP_FOR_AUTH = Query(select(app_passwords).where(app_passwords.c.id == bindparam("id")))


async def insert_app_password(tx: Tx, values: dict[str, Any]) -> None:
    await tx.execute(insert(app_passwords).values(**values))


async def app_password_exists(tx: Tx, lookup_id: str) -> bool:
    return await tx.first(select(app_passwords.c.id).where(app_passwords.c.id == lookup_id)) is not None


async def app_passwords_of(tx: Tx, user_id: int) -> list[Row]:
    """The user's app passwords (no digest), oldest first."""
    return await tx.all(
        select(*_APP_PUBLIC)
        .where(app_passwords.c.user_id == user_id)
        .order_by(app_passwords.c.created_at, app_passwords.c.id)
    )


async def app_password_for_auth(tx: Tx, lookup_id: str) -> Row | None:
    return await tx.first(_APP_FOR_AUTH, {"id": lookup_id})


async def touch_app_password(tx: Tx, lookup_id: str, now: datetime, client_ip: str | None) -> None:
    await tx.execute(
        update(app_passwords)
        .where(app_passwords.c.id == lookup_id)
        .values(last_used_at=now, last_ip=client_ip)
    )


async def delete_app_password(tx: Tx, lookup_id: str, user_id: int) -> bool:
    stmt = delete(app_passwords).where(app_passwords.c.id == lookup_id, app_passwords.c.user_id == user_id)
    return await tx.rowcount(stmt) > 0
