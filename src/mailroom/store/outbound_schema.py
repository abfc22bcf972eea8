"""Tables of the outbound queue: one row per message to send, one per recipient's status.

A message waits in ``outbound_queue`` while any recipient is ``queued`` or ``deferred``;
its raw bytes are a blob (``blob_sha``), released (set to null) once every recipient is
final so the blob collector may take it. Rows stay after that: the per-recipient status is
what senders and administrators query.

Claiming is a compare-and-set on ``locked_until`` (``UPDATE ... WHERE id = ? AND
(locked_until IS NULL OR locked_until < now)``), the same on SQLite and PostgreSQL, so any
number of worker processes share the queue and a crashed worker's claim simply expires.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from mailroom.store import mail_schema  # noqa: F401  (blobs is referenced by name)
from mailroom.store.schema import metadata
from mailroom.store.types import UTCDateTime

outbound_queue = Table(
    "outbound_queue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # submission | api | forward | alias | relay | autoreply | dsn
    Column("source", String(16), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True),
    # The sender's copy in their ``sent`` label, if one was stored (mail.messages.status).
    Column("email_id", Integer, nullable=True, index=True),
    Column("blob_sha", String(64), ForeignKey("blobs.sha"), nullable=True, index=True),
    Column("mail_from", String(320), nullable=False, default=""),  # '' = null sender (a DSN)
    Column("message_id", String(998), nullable=True),
    Column("subject", Text, nullable=False, default=""),
    Column("size", BigInteger, nullable=False),
    Column("status", String(16), nullable=False, default="queued"),  # queued | done
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    # A delayed send (JMAP FUTURERELEASE holdUntil/holdFor): nothing goes out before it, not
    # even to local recipients, and the sender may cancel until then (migration 0022_jmap3).
    Column("hold_until", UTCDateTime, nullable=True),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_outbound_queue_status_next_attempt_at", "status", "next_attempt_at"),
)

outbound_recipients = Table(
    "outbound_recipients",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("queue_id", Integer, ForeignKey("outbound_queue.id", ondelete="CASCADE"), nullable=False),
    Column("address", String(320), nullable=False),
    # Next hop: null = the global smarthost; '' = the domain's MX; else a relay's host[:port].
    Column("relay", String(300), nullable=True),
    # queued | deferred (4xx, will retry) | delivered | failed (5xx or too old; DSN sent)
    # | canceled (a delayed send the sender canceled before its time)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_code", Integer, nullable=True),
    Column("last_reply", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("queue_id", "address"),
)
