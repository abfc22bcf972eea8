"""Outbound intents: what ingest decided should leave the server, for the outbound side to do.

Ingest writes intents in the same transaction as the mail it stores, so an acknowledged
message never loses its forwards and a resent one never doubles them (``dedup`` is unique).
The consumer (outbound delivery) owns everything after ``pending``.

Contract of a row in ``outbound_intents``:

``kind``
    ``forward``: a user's forwarding (``via`` in ``payload`` is the forwarding mailbox; rewrite
    the envelope sender with SRS, add ``Delivered-To: <via>`` so loops are seen);
    ``alias``: an alias with an external destination (same treatment as forward);
    ``relay``: mail for a relayed domain, to be passed to ``relay`` (a smarthost, or ``''``
    for the domain's MX), envelope unchanged;
    ``srs``: mail to one of our SRS addresses (a bounce of a forward) for the address it
    encodes (``via``: the SRS address; treated as a forward, so the null sender stays null;
    ``relay``: the smarthost when that address is in a relayed domain, else null: the global
    smarthost);
    ``autoreply``: an RFC 3834 auto-reply to build and send (``payload``: ``subject``,
    ``body``, ``from`` (the mailbox), ``in_reply_to``, ``references``, ``original_subject``);
    ``blob_sha`` is then null and ``recipients`` is the original envelope sender.
``blob_sha``
    the raw message to send (forward, alias, relay); the blob is kept while a row names it.
``mail_from``, ``recipients``
    the envelope as ingest received it (before any SRS rewriting) and where to send.
``status``
    ``pending`` (new), then the consumer's own states (``sending``, ``done``, ``failed``),
    with ``attempts``, ``next_attempt_at`` and ``last_error`` for its retries. Delete rows
    when done to release their blobs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select

from mailroom.store.engine import Query, Row, Tx
from mailroom.store.mail_schema import autoreply_log, outbound_intents
from mailroom.store.upsert import insert_ignore, upsert

_PENDING = Query(
    select(outbound_intents)
    .where(outbound_intents.c.status == "pending", outbound_intents.c.next_attempt_at <= bindparam("now"))
    .order_by(outbound_intents.c.next_attempt_at, outbound_intents.c.id)
    .limit(bindparam("limit"))
)
_LAST_REPLY = Query(
    select(autoreply_log.c.last_sent_at).where(
        autoreply_log.c.user_id == bindparam("user_id"), autoreply_log.c.sender == bindparam("sender")
    )
)


async def record(
    tx: Tx,
    *,
    kind: str,
    dedup: str,
    now: datetime,
    recipients: Sequence[str],
    mail_from: str = "",
    user_id: int | None = None,
    email_id: int | None = None,
    blob_sha: str | None = None,
    relay: str | None = None,
    payload: Mapping[str, Any] | None = None,
) -> bool:
    """Add an intent unless one with the same ``dedup`` exists; True when added."""
    values = {
        "kind": kind,
        "dedup": dedup,
        "user_id": user_id,
        "email_id": email_id,
        "blob_sha": blob_sha,
        "mail_from": mail_from,
        "recipients": list(recipients),
        "relay": relay,
        "payload": dict(payload or {}),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    return await insert_ignore(tx, outbound_intents, values, ["dedup"])


async def pending(tx: Tx, now: datetime, limit: int = 100) -> list[Row]:
    """Intents due now, oldest first (for the outbound consumer)."""
    return await tx.all(_PENDING, {"now": now, "limit": limit})


async def claim_autoreply(tx: Tx, user_id: int, sender: str, now: datetime, interval: timedelta) -> bool:
    """Whether ``user_id`` may auto-reply to ``sender`` now (RFC 3834: once per period);
    when it may, the reply is recorded as sent now."""
    last = await tx.scalar(_LAST_REPLY, {"user_id": user_id, "sender": sender})
    if last is not None and now - last < interval:
        return False
    await upsert(
        tx,
        autoreply_log,
        {"user_id": user_id, "sender": sender, "last_sent_at": now},
        ["user_id", "sender"],
        {"last_sent_at": now},
    )
    return True
