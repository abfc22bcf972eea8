"""Repository of API keys' own rate limits (``api_key_limits``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select

from mailroom.store.accounting_schema import api_key_limits
from mailroom.store.engine import Query, Tx

_GET = Query(select(api_key_limits.c.limits).where(api_key_limits.c.key_id == bindparam("key_id")))


async def get(tx: Tx, key_id: str) -> list[dict[str, Any]]:
    """The key's limits (``[{"limit": "100/minute", "methods": "*"}]``); empty when it has none."""
    value = await tx.scalar(_GET, {"key_id": key_id})
    return list(value) if value else []


async def replace(tx: Tx, key_id: str, limits: list[dict[str, Any]], when: datetime) -> None:
    await tx.execute(delete(api_key_limits).where(api_key_limits.c.key_id == key_id))
    if limits:
        await tx.execute(insert(api_key_limits).values(key_id=key_id, limits=limits, updated_at=when))
