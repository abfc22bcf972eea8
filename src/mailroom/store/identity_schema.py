"""Tables of the second factor (TOTP and its recovery codes) and of app passwords."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, String, Table

from mailroom.store.schema import metadata
from mailroom.store.types import UTCDateTime

#: One row per user who started a TOTP set-up; ``enabled`` once a code confirmed it.
user_totp = Table(
    "user_totp",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    #: The base32 secret, encrypted (AES-GCM under a key derived from ``secret_key``).
    Column("secret_encrypted", String(200), nullable=False),
    Column("enabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime, nullable=True),
    #: The 30-second time step of the last code accepted: a code is accepted once.
    Column("last_step", Integer, nullable=True),
)

#: Single-use recovery codes: only their SHA-256 digest is kept.
totp_recovery_codes = Table(
    "totp_recovery_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("digest", String(64), nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

#: Passwords for mail clients that cannot do a second factor, each for named protocols.
app_passwords = Table(
    "app_passwords",
    metadata,
    Column("id", String(16), primary_key=True),  # the lookup id embedded in the secret
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("protocols", JSON, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("last_ip", String(64), nullable=True),
)
