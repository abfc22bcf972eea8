"""Labels of a mailbox: the system ones (created on first use) and the user's own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, select

from mailroom.store.engine import Query, Tx
from mailroom.store.mail_schema import labels
from mailroom.store.upsert import insert_ignore

#: Every mailbox has these; they cannot be renamed or deleted.
SYSTEM_LABELS = ("inbox", "sent", "drafts", "spam", "trash", "archive", "starred", "important", "postponed")

_BY_USER = Query(
    select(labels.c.id, labels.c.name, labels.c.kind).where(labels.c.user_id == bindparam("user_id"))
)


async def ids_by_name(tx: Tx, user_id: int) -> dict[str, int]:
    """``{name: id}`` of every label the mailbox has."""
    return {r["name"]: int(r["id"]) for r in await tx.all(_BY_USER, {"user_id": user_id})}


async def ensure_system(tx: Tx, user_id: int, now: datetime) -> dict[str, int]:
    """Create the system labels a mailbox lacks; returns ``{name: id}`` of all its labels.

    Needs a write transaction (when something is missing); cheap when nothing is.
    """
    known = await ids_by_name(tx, user_id)
    missing = [name for name in SYSTEM_LABELS if name not in known]
    if missing:
        for name in missing:
            await insert_ignore(
                tx,
                labels,
                {"user_id": user_id, "name": name, "kind": "system", "created_at": now},
                ["user_id", "name"],
            )
        known = await ids_by_name(tx, user_id)
    return known


async def ensure(tx: Tx, user_id: int, names: list[str], now: datetime) -> dict[str, int]:
    """Ids of ``names``, creating user labels that do not exist yet (system names map to theirs)."""
    known = await ensure_system(tx, user_id, now)
    created = False
    for name in names:
        if name not in known:
            await tx.execute(insert(labels).values(user_id=user_id, name=name, kind="user", created_at=now))
            created = True
    if created:
        known = await ids_by_name(tx, user_id)
    return {name: known[name] for name in names}
