"""JMAP's own table: push subscriptions (RFC 8620 §7.2)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, String, Table

from mailroom.store.schema import metadata
from mailroom.store.types import UTCDateTime

push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    # "P" + random URL-safe characters: never reused.
    Column("id", String(40), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("device_client_id", String(255), nullable=False),
    Column("url", String(2048), nullable=False),
    # The code sent in the PushVerification; the subscription is verified once the client
    # sets verificationCode to it.
    Column("verification_code", String(64), nullable=False),
    Column("verified", Boolean, nullable=False, default=False),
    Column("expires", UTCDateTime, nullable=False),
    # null: every type
    Column("types", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)
