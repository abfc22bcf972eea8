"""Repository of mail client preferences (one JSON document per user)."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

from sqlalchemy import bindparam, select

from mailroom.store.client_schema import client_settings
from mailroom.store.engine import Query, Tx
from mailroom.store.upsert import upsert

#: A JSON value as the document holds it.
JSONValue: TypeAlias = "str | int | float | bool | list[JSONValue] | dict[str, JSONValue] | None"
#: A user's preferences: a free-form JSON object (the web client picks the keys; services/mail/
#: settings.py reads the ones it knows), so a JSON object type, not a TypedDict of fixed keys.
Preferences: TypeAlias = dict[str, JSONValue]

_GET = Query(select(client_settings.c.data).where(client_settings.c.user_id == bindparam("user_id")))


async def get(tx: Tx, user_id: int) -> Preferences:
    """The stored preferences; empty when the user never saved any."""
    data = await tx.scalar(_GET, {"user_id": user_id})
    return dict(data) if isinstance(data, dict) else {}


async def put(tx: Tx, user_id: int, data: Preferences, when: datetime) -> None:
    await upsert(
        tx,
        client_settings,
        {"user_id": user_id, "data": data, "updated_at": when},
        ["user_id"],
        {"data": data, "updated_at": when},
    )
