"""The POP3 maildrop locks (RFC 1939 §8: one session at a time may hold a maildrop)."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table

from mailroom.store.schema import metadata
from mailroom.store.types import UTCDateTime

#: A POP3 session holding a user's maildrop: its random ``session`` id, and until when the
#: lock stands if the session vanishes without releasing it (a killed worker): the session
#: renews it while it runs, and its idle timeout ends it before that moment.
pop3_locks = Table(
    "pop3_locks",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("session", String(32), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
