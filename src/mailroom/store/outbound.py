"""The outbound queue: enqueue, claim, record attempts, finish; what admins and senders query.

See store/outbound_schema.py for the tables and delivery/queue.py for the worker. Intents
(store/intents.py) are taken here too: the consumer's half of that contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update

from mailroom.store.engine import Query, Tx
from mailroom.store.mail_schema import outbound_intents
from mailroom.store.outbound_schema import outbound_queue, outbound_recipients
from mailroom.store.schema import users
from mailroom.store.sorting import order_by

#: Recipient states that still wait for an attempt.
WAITING = ("queued", "deferred")
#: The reply recorded for the recipients of a canceled delayed send.
CANCELED_REPLY = "554 5.3.0 canceled by the sender"


@dataclass(frozen=True, slots=True)
class NewRecipient:
    """A recipient of a message being queued; ``status`` other than queued records an outcome
    already known (a local delivery), so one message's status is in one place."""

    address: str
    relay: str | None = None
    status: str = "queued"
    code: int | None = None
    reply: str | None = None


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message in the outbound queue (``outbound_queue``); ``status`` is queued or done."""

    id: int
    source: str
    user_id: int | None
    email_id: int | None
    blob_sha: str | None
    mail_from: str  # '' for the null sender
    message_id: str | None
    subject: str
    size: int
    status: str
    attempts: int
    next_attempt_at: datetime
    hold_until: datetime | None  # a delayed send's time (JMAP FUTURERELEASE), else None
    locked_until: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    """One recipient of a queued message and where its delivery stands."""

    id: int
    queue_id: int
    address: str
    relay: str | None
    status: str  # queued | deferred | delivered | failed | canceled
    attempts: int
    last_code: int | None
    last_reply: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """Where the delivery to one recipient of a sent message stands."""

    queue_id: int
    address: str
    status: str
    attempts: int
    last_code: int | None
    last_reply: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Intent:
    """Mail that ingest decided to send on (a forward, an alias's outside destination, a
    relayed domain's message, an auto-reply), recorded for the queue to carry out."""

    id: int
    kind: str  # forward | alias | relay | autoreply
    user_id: int | None
    email_id: int | None
    blob_sha: str | None
    mail_from: str
    recipients: list[str]
    relay: str | None
    payload: dict[str, Any]
    dedup: str
    status: str  # pending | sending | done | failed
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SenderProfile:
    """What the sender rule needs of a user."""

    id: int
    email: str
    display_name: str
    allow_spoofing: bool
    enabled: bool


_DUE = Query(
    select(outbound_queue.c.id)
    .where(
        outbound_queue.c.status == "queued",
        outbound_queue.c.next_attempt_at <= bindparam("now"),
        or_(outbound_queue.c.locked_until.is_(None), outbound_queue.c.locked_until < bindparam("now")),
    )
    .order_by(outbound_queue.c.next_attempt_at, outbound_queue.c.id)
    .limit(bindparam("limit"))
)
_GET = Query(select(outbound_queue).where(outbound_queue.c.id == bindparam("id")))
_RECIPIENTS = Query(
    select(outbound_recipients)
    .where(outbound_recipients.c.queue_id == bindparam("id"))
    .order_by(outbound_recipients.c.id)
)
_DUE_INTENTS = Query(
    select(outbound_intents)
    .where(
        or_(
            and_(
                outbound_intents.c.status == "pending",
                outbound_intents.c.next_attempt_at <= bindparam("now"),
            ),
            # A consumer that claimed an intent and died: taken again after the lease.
            and_(outbound_intents.c.status == "sending", outbound_intents.c.updated_at < bindparam("stale")),
        )
    )
    .order_by(outbound_intents.c.id)
    .limit(bindparam("limit"))
)


async def enqueue(
    tx: Tx,
    *,
    source: str,
    mail_from: str,
    recipients: Sequence[NewRecipient],
    blob_sha: str | None,
    size: int,
    now: datetime,
    user_id: int | None = None,
    email_id: int | None = None,
    message_id: str | None = None,
    subject: str = "",
    hold_until: datetime | None = None,
) -> int:
    """Add a message and its recipients; returns the queue id. Nothing left to send: ``done``.
    With ``hold_until`` (a delayed send) its first attempt waits until then."""
    waiting = any(r.status in WAITING for r in recipients)
    queue_id = int(
        await tx.scalar(
            insert(outbound_queue)
            .values(
                source=source,
                user_id=user_id,
                email_id=email_id,
                blob_sha=blob_sha if waiting else None,
                mail_from=mail_from[:320],
                message_id=message_id[:998] if message_id else None,
                subject=subject,
                size=size,
                status="queued" if waiting else "done",
                attempts=0,
                next_attempt_at=hold_until or now,
                hold_until=hold_until,
                locked_until=None,
                last_error=None,
                created_at=now,
                updated_at=now,
            )
            .returning(outbound_queue.c.id)
        )
    )
    await tx.execute(
        insert(outbound_recipients),
        [
            {
                "queue_id": queue_id,
                "address": r.address[:320],
                "relay": r.relay,
                "status": r.status,
                "attempts": 0,
                "last_code": r.code,
                "last_reply": r.reply,
                "updated_at": now,
            }
            for r in recipients
        ],
    )
    return queue_id


async def due(tx: Tx, now: datetime, limit: int = 50) -> list[int]:
    """Ids of queued messages whose next attempt is due and that nobody holds."""
    return [int(i) for i in await tx.scalars(_DUE, {"now": now, "limit": limit})]


async def claim(tx: Tx, queue_id: int, now: datetime, until: datetime) -> bool:
    """Take a message for an attempt until ``until``; False when another worker holds it."""
    taken = await tx.rowcount(
        update(outbound_queue)
        .where(
            outbound_queue.c.id == queue_id,
            outbound_queue.c.status == "queued",
            or_(outbound_queue.c.locked_until.is_(None), outbound_queue.c.locked_until < now),
        )
        .values(locked_until=until)
    )
    return taken == 1


async def cancel_held(tx: Tx, queue_id: int, user_id: int, now: datetime) -> bool:
    """Cancel a delayed send of ``user_id`` that has not started (its time not come, no
    attempt, no worker holding it): the entry is done, its recipients ``canceled``, its blob
    released. False when it cannot be (sent, being sent, not held, not theirs)."""
    q = outbound_queue.c
    canceled = await tx.rowcount(
        update(outbound_queue)
        .where(
            q.id == queue_id,
            q.user_id == user_id,
            q.status == "queued",
            q.attempts == 0,
            q.hold_until.is_not(None),
            q.hold_until > now,
            or_(q.locked_until.is_(None), q.locked_until < now),
        )
        .values(status="done", blob_sha=None, last_error="canceled by the sender", updated_at=now)
    )
    if canceled != 1:
        return False
    await tx.execute(
        update(outbound_recipients)
        .where(outbound_recipients.c.queue_id == queue_id, outbound_recipients.c.status.in_(WAITING))
        .values(status="canceled", last_reply=CANCELED_REPLY, updated_at=now)
    )
    return True


async def get(tx: Tx, queue_id: int) -> QueuedMessage | None:
    row = await tx.first(_GET, {"id": queue_id})
    return QueuedMessage(**row) if row is not None else None


async def recipients(tx: Tx, queue_id: int) -> list[QueuedRecipient]:
    return [QueuedRecipient(**row) for row in await tx.all(_RECIPIENTS, {"id": queue_id})]


async def recipients_of(tx: Tx, queue_ids: Sequence[int]) -> dict[int, list[QueuedRecipient]]:
    """Recipients of several messages, by queue id (one query for a listing page)."""
    out: dict[int, list[QueuedRecipient]] = {i: [] for i in queue_ids}
    if queue_ids:
        rows = await tx.all(
            select(outbound_recipients)
            .where(outbound_recipients.c.queue_id.in_(list(queue_ids)))
            .order_by(outbound_recipients.c.id)
        )
        for row in rows:
            out[int(row["queue_id"])].append(QueuedRecipient(**row))
    return out


async def set_recipient(
    tx: Tx, recipient_id: int, *, status: str, code: int | None, reply: str, now: datetime, attempted: bool
) -> None:
    """Record one recipient's outcome."""
    values: dict[str, Any] = {"status": status, "last_code": code, "last_reply": reply, "updated_at": now}
    if attempted:
        values["attempts"] = outbound_recipients.c.attempts + 1
    await tx.execute(
        update(outbound_recipients).where(outbound_recipients.c.id == recipient_id).values(**values)
    )


async def reschedule(
    tx: Tx, queue_id: int, *, attempts: int, next_attempt_at: datetime, error: str | None, now: datetime
) -> None:
    """Release the claim and set the next attempt."""
    await tx.execute(
        update(outbound_queue)
        .where(outbound_queue.c.id == queue_id)
        .values(
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            locked_until=None,
            last_error=error,
            updated_at=now,
        )
    )


async def finish(tx: Tx, queue_id: int, *, attempts: int, error: str | None, now: datetime) -> None:
    """Every recipient is final: mark the message done and release its blob."""
    await tx.execute(
        update(outbound_queue)
        .where(outbound_queue.c.id == queue_id)
        .values(
            status="done",
            attempts=attempts,
            locked_until=None,
            blob_sha=None,
            last_error=error,
            updated_at=now,
        )
    )


async def retry_now(tx: Tx, queue_id: int, now: datetime) -> bool:
    """Make a queued message due now (and free it of a stale claim); False when not queued."""
    changed = await tx.rowcount(
        update(outbound_queue)
        .where(outbound_queue.c.id == queue_id, outbound_queue.c.status == "queued")
        .values(next_attempt_at=now, locked_until=None, updated_at=now)
    )
    return changed == 1


async def delete_entry(tx: Tx, queue_id: int) -> bool:
    """Forget a message and its recipients (its blob becomes collectable)."""
    await tx.execute(delete(outbound_recipients).where(outbound_recipients.c.queue_id == queue_id))
    return await tx.rowcount(delete(outbound_queue).where(outbound_queue.c.id == queue_id)) == 1


async def purge_done(tx: Tx, before: datetime, limit: int = 1000) -> int:
    """Delete up to ``limit`` finished entries last changed before ``before``; returns how many."""
    ids = [
        int(i)
        for i in await tx.scalars(
            select(outbound_queue.c.id)
            .where(outbound_queue.c.status == "done", outbound_queue.c.updated_at < before)
            .order_by(outbound_queue.c.id)
            .limit(limit)
        )
    ]
    if ids:
        await tx.execute(delete(outbound_recipients).where(outbound_recipients.c.queue_id.in_(ids)))
        await tx.execute(delete(outbound_queue).where(outbound_queue.c.id.in_(ids)))
    return len(ids)


async def page(
    tx: Tx, *, status: str | None, offset: int, limit: int, sort: str = "-id"
) -> tuple[list[QueuedMessage], int]:
    """Queue entries, newest first, optionally only ``queued`` or ``done`` ones, and their total."""
    where = [] if status is None else [outbound_queue.c.status == status]
    rows = await tx.all(
        select(outbound_queue)
        .where(*where)
        .order_by(*order_by(outbound_queue.c, sort, outbound_queue.c.id))
        .offset(offset)
        .limit(limit)
    )
    total = int(await tx.scalar(select(func.count()).select_from(outbound_queue).where(*where)) or 0)
    return [QueuedMessage(**row) for row in rows], total


async def statuses_for_email(tx: Tx, email_id: int) -> list[RecipientStatus]:
    """Per-recipient delivery status of the message whose sent copy is ``email_id``, in
    recipient order; empty when it was not sent through the queue."""
    rows = await tx.all(
        select(
            outbound_recipients.c.queue_id,
            outbound_recipients.c.address,
            outbound_recipients.c.status,
            outbound_recipients.c.attempts,
            outbound_recipients.c.last_code,
            outbound_recipients.c.last_reply,
            outbound_recipients.c.updated_at,
        )
        .join(outbound_queue, outbound_queue.c.id == outbound_recipients.c.queue_id)
        .where(outbound_queue.c.email_id == email_id)
        .order_by(outbound_recipients.c.queue_id, outbound_recipients.c.id)
    )
    return [RecipientStatus(**row) for row in rows]


# -- intents (recorded by ingest, consumed here) -----------------------------------------


async def due_intents(tx: Tx, now: datetime, stale: datetime, limit: int = 100) -> list[Intent]:
    """Pending intents, and ones a dead consumer claimed before ``stale``."""
    rows = await tx.all(_DUE_INTENTS, {"now": now, "stale": stale, "limit": limit})
    return [Intent(**row) for row in rows]


async def claim_intent(tx: Tx, intent_id: int, now: datetime, stale: datetime) -> bool:
    """Mark an intent ``sending`` (ours); False when another consumer has it."""
    taken = await tx.rowcount(
        update(outbound_intents)
        .where(
            outbound_intents.c.id == intent_id,
            or_(
                outbound_intents.c.status == "pending",
                and_(outbound_intents.c.status == "sending", outbound_intents.c.updated_at < stale),
            ),
        )
        .values(status="sending", attempts=outbound_intents.c.attempts + 1, updated_at=now)
    )
    return taken == 1


async def drop_intent(tx: Tx, intent_id: int) -> None:
    """An intent carried out (its message is queued or delivered): delete it, releasing its blob."""
    await tx.execute(delete(outbound_intents).where(outbound_intents.c.id == intent_id))


async def fail_intent(tx: Tx, intent_id: int, error: str, now: datetime) -> None:
    """An intent that cannot be carried out (its blob is gone): kept as ``failed`` for admins."""
    await tx.execute(
        update(outbound_intents)
        .where(outbound_intents.c.id == intent_id)
        .values(status="failed", last_error=error, updated_at=now)
    )


# Prepared: the sender rule reads it for every message a user sends (delivery/senders.py).
_SENDER_PROFILE = Query(
    select(users.c.id, users.c.email, users.c.display_name, users.c.allow_spoofing, users.c.enabled).where(
        users.c.id == bindparam("id")
    )
)


async def sender_profile(tx: Tx, user_id: int) -> SenderProfile | None:
    """What the sender check needs of a user."""
    row = await tx.first(_SENDER_PROFILE, {"id": user_id})
    return SenderProfile(**row) if row is not None else None
