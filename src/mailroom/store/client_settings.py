"""Repository of mail client preferences (one JSON document per user)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from mailroom.store.client_schema import client_settings
from mailroom.store.engine import Query, Tx
from mailroom.store.upsert import upsert

_GET = Query(select(client_settings.c.data).where(client_settings.c.user_id == bindparam("user_id")))


async def get(tx: Tx, user_id: int) -> dict[str, Any]:
    """The stored preferences; empty when the user never saved any."""
    data = await tx.scalar(_GET, {"user_id": user_id})
    return dict(data) if isinstance(data, dict) else {}


async def put(tx: Tx, user_id: int, data: dict[str, Any], when: datetime) -> None:
    await upsert(
        tx,
        client_settings,
        {"user_id": user_id, "data": data, "updated_at": when},
        ["user_id"],
        {"data": data, "updated_at": when},
    )
