"""Repository of mail client sessions and their refresh tokens.

Only the SHA-256 digest of a token is stored. A session lives while its access token or its
refresh token has not expired (``refresh_expires_at``); its refresh tokens go with it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, and_, bindparam, delete, insert, or_, select, update

from mailroom.store.client_schema import session_refresh_tokens as refresh_tokens
from mailroom.store.client_schema import sessions
from mailroom.store.engine import Query, Tx
from mailroom.store.schema import users


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session as its owner sees it: no digest, no password stamp."""

    id: str
    user_id: int
    mobile: bool
    user_agent: str
    client_ip: str | None
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime
    refresh_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionCredential:
    """A session with what checking its token needs: its digest, its password stamp and its
    user's authentication columns (the secrets kept out of ``repr``)."""

    id: str
    digest: str = field(repr=False)
    expires_at: datetime
    last_used_at: datetime
    password_stamp: str = field(repr=False)
    user_id: int
    email: str
    enabled: bool
    global_admin: bool
    password_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class RefreshCredential:
    """A refresh token with its session's and its user's authentication columns."""

    id: str
    digest: str = field(repr=False)
    expires_at: datetime
    used_at: datetime | None
    session_id: str
    mobile: bool
    password_stamp: str = field(repr=False)
    user_id: int
    email: str
    enabled: bool
    password_hash: str = field(repr=False)


_PUBLIC = [sessions.c[name] for name in SessionRecord.__dataclass_fields__]

# Prepared: runs on every request made with a session token.
_FOR_AUTH = Query(
    select(
        sessions.c.id,
        sessions.c.digest,
        sessions.c.expires_at,
        sessions.c.last_used_at,
        sessions.c.password_stamp,
        users.c.id.label("user_id"),
        users.c.email,
        users.c.enabled,
        users.c.global_admin,
        users.c.password_hash,
    )
    .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
    .where(sessions.c.id == bindparam("session_id"))
)


def _ended(now: Any) -> ColumnElement[bool]:
    """Neither the access token nor the refresh token can be used any more."""
    return and_(
        sessions.c.expires_at <= now,
        or_(sessions.c.refresh_expires_at.is_(None), sessions.c.refresh_expires_at <= now),
    )


_OF_USER = Query(
    select(*_PUBLIC)
    .where(
        sessions.c.user_id == bindparam("user_id"),
        or_(sessions.c.expires_at > bindparam("now"), sessions.c.refresh_expires_at > bindparam("now")),
    )
    .order_by(sessions.c.created_at.desc(), sessions.c.id)
)


async def get_for_auth(tx: Tx, session_id: str) -> SessionCredential | None:
    """The session, its digest and its user's authentication columns."""
    row = await tx.first(_FOR_AUTH, {"session_id": session_id})
    return SessionCredential(**row) if row is not None else None


class NewSession(TypedDict):
    """The columns :func:`insert_session` writes."""

    id: str
    digest: str
    user_id: int
    password_stamp: str
    mobile: bool
    user_agent: str
    client_ip: str | None
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime
    refresh_expires_at: datetime | None


async def insert_session(tx: Tx, values: NewSession) -> None:
    await tx.execute(insert(sessions).values(**values))


async def get(tx: Tx, session_id: str) -> SessionRecord | None:
    """One session, or None."""
    row = await tx.first(select(*_PUBLIC).where(sessions.c.id == session_id))
    return SessionRecord(**row) if row is not None else None


async def of_user(tx: Tx, user_id: int, now: datetime) -> list[SessionRecord]:
    """A user's sessions that have not expired, newest first."""
    return [SessionRecord(**row) for row in await tx.all(_OF_USER, {"user_id": user_id, "now": now})]


async def delete_session(tx: Tx, session_id: str, user_id: int) -> bool:
    stmt = delete(sessions).where(sessions.c.id == session_id, sessions.c.user_id == user_id)
    return await tx.rowcount(stmt) > 0


async def delete_others(tx: Tx, user_id: int, keep: Collection[str]) -> int:
    """End every session of a user except those in ``keep``; how many ended."""
    stmt = delete(sessions).where(sessions.c.user_id == user_id)
    if keep:
        stmt = stmt.where(sessions.c.id.not_in(list(keep)))
    return await tx.rowcount(stmt)


async def delete_expired(tx: Tx, user_id: int, now: datetime) -> int:
    stmt = delete(sessions).where(sessions.c.user_id == user_id, _ended(now))
    return await tx.rowcount(stmt)


async def delete_all_expired(tx: Tx, now: datetime) -> int:
    """End every user's expired sessions (housekeeping); how many rows this call deleted."""
    return await tx.rowcount(delete(sessions).where(_ended(now)))


async def restamp(tx: Tx, session_id: str, stamp: str) -> None:
    """Carry a session over a password change."""
    await tx.execute(update(sessions).where(sessions.c.id == session_id).values(password_stamp=stamp))


async def touch(tx: Tx, session_id: str, when: datetime) -> None:
    await tx.execute(update(sessions).where(sessions.c.id == session_id).values(last_used_at=when))


# -- Refresh tokens ---------------------------------------------------------------------------


class NewRefresh(TypedDict):
    """The columns :func:`insert_refresh` writes (a new token is unused)."""

    id: str
    session_id: str
    digest: str
    created_at: datetime
    expires_at: datetime
    used_at: None


async def insert_refresh(tx: Tx, values: NewRefresh) -> None:
    await tx.execute(insert(refresh_tokens).values(**values))


async def refresh_for_auth(tx: Tx, refresh_id: str) -> RefreshCredential | None:
    """A refresh token with its session's and its user's authentication columns."""
    stmt = (
        select(
            refresh_tokens.c.id,
            refresh_tokens.c.digest,
            refresh_tokens.c.expires_at,
            refresh_tokens.c.used_at,
            sessions.c.id.label("session_id"),
            sessions.c.mobile,
            sessions.c.password_stamp,
            users.c.id.label("user_id"),
            users.c.email,
            users.c.enabled,
            users.c.password_hash,
        )
        .select_from(
            refresh_tokens.join(sessions, sessions.c.id == refresh_tokens.c.session_id).join(
                users, users.c.id == sessions.c.user_id
            )
        )
        .where(refresh_tokens.c.id == refresh_id)
    )
    row = await tx.first(stmt)
    return RefreshCredential(**row) if row is not None else None


async def use_refresh(tx: Tx, refresh_id: str, now: datetime) -> bool:
    """Mark a refresh token used; False when it already was (by a concurrent refresh too:
    the conditional update is the arbiter)."""
    stmt = (
        update(refresh_tokens)
        .where(refresh_tokens.c.id == refresh_id, refresh_tokens.c.used_at.is_(None))
        .values(used_at=now)
    )
    return await tx.rowcount(stmt) == 1


class SessionRenewal(TypedDict):
    """The columns :func:`renew` changes: the new access token and its lifetimes."""

    digest: str
    expires_at: datetime
    refresh_expires_at: datetime | None
    last_used_at: datetime
    client_ip: str | None


async def renew(tx: Tx, session_id: str, values: SessionRenewal, now: datetime) -> None:
    """Give a session its new access token digest and lifetimes; forget its refresh tokens
    that have expired (a used one is kept until then, to recognise its reuse)."""
    await tx.execute(update(sessions).where(sessions.c.id == session_id).values(**values))
    await tx.execute(
        delete(refresh_tokens).where(
            refresh_tokens.c.session_id == session_id, refresh_tokens.c.expires_at <= now
        )
    )
