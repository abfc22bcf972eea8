"""Repository of API keys' own rate limits (``api_key_limits``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select

from mailroom.store.accounting_schema import api_key_limits
from mailroom.store.engine import Query, Tx


@dataclass(frozen=True, slots=True)
class KeyLimitRecord:
    """One limit of a key: ``limit`` (``100/minute``) for the methods matching ``methods``."""

    limit: str
    methods: str = "*"


_GET = Query(select(api_key_limits.c.limits).where(api_key_limits.c.key_id == bindparam("key_id")))


async def get(tx: Tx, key_id: str) -> list[KeyLimitRecord]:
    """The key's limits; empty when it has none."""
    value = await tx.scalar(_GET, {"key_id": key_id})
    return [KeyLimitRecord(**item) for item in value] if value else []


async def replace(tx: Tx, key_id: str, limits: Sequence[KeyLimitRecord], when: datetime) -> None:
    """Give a key these limits (none: remove them)."""
    await tx.execute(delete(api_key_limits).where(api_key_limits.c.key_id == key_id))
    if limits:
        stored = [asdict(limit) for limit in limits]  # [{"limit": "100/minute", "methods": "*"}]
        await tx.execute(insert(api_key_limits).values(key_id=key_id, limits=stored, updated_at=when))
