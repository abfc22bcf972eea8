"""Repository of idempotency keys: a marker while the first request runs, then its response."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, insert, select, update

from mailroom.store.accounting_schema import idempotency_keys as t
from mailroom.store.engine import Tx


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A claimed key: ``running`` while its first request runs, then ``done`` with the
    response to replay (``status``, and ``result``: the value given to :func:`finish`)."""

    fingerprint: str
    state: Literal["running", "done"]
    status: int | None
    result: Any
    created_at: datetime
    expires_at: datetime


async def get(tx: Tx, scope: str, key: str) -> IdempotencyRecord | None:
    """The key's claim in ``scope``, or None."""
    query = select(t.c.fingerprint, t.c.state, t.c.status, t.c.result, t.c.created_at, t.c.expires_at)
    row = await tx.first(query.where(t.c.scope == scope, t.c.key == key))
    if row is None:
        return None
    stored = row.pop("result") or {}
    return IdempotencyRecord(**row, result=stored.get("value"))


async def start(tx: Tx, scope: str, key: str, fingerprint: str, now: datetime, expires_at: datetime) -> None:
    """Claim the key (a primary-key conflict means someone else holds it)."""
    await tx.execute(
        insert(t).values(
            scope=scope,
            key=key,
            fingerprint=fingerprint,
            state="running",
            status=None,
            result=None,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def finish(tx: Tx, scope: str, key: str, status: int | None, result: Any) -> None:
    await tx.execute(
        update(t)
        .where(t.c.scope == scope, t.c.key == key)
        .values(state="done", status=status, result={"value": result})
    )


async def release(tx: Tx, scope: str, key: str) -> None:
    await tx.execute(delete(t).where(t.c.scope == scope, t.c.key == key))


async def prune(tx: Tx, now: datetime) -> int:
    return await tx.rowcount(delete(t).where(t.c.expires_at <= now))
