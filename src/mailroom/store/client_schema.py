"""Tables of the mail client API: sign-up names, invites, the waitlist, sessions, client
settings, contacts and the public key directory.

A user's rows go with the user (``ON DELETE CASCADE`` on ``users.id``); invites and waitlist
entries go with their domain.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from mailroom.store.schema import metadata
from mailroom.store.types import UTCDateTime

#: The canonical form (lowercase, dots removed) of every signed-up name, one per domain:
#: ``john.smith`` and ``johnsmith`` cannot both exist.
usernames = Table(
    "usernames",
    metadata,
    Column("domain", String(253), ForeignKey("domains.name", ondelete="CASCADE"), nullable=False),
    Column("canonical", String(64), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("spelling", String(64), nullable=False),  # as the person typed it
    PrimaryKeyConstraint("domain", "canonical"),
)

invites = Table(
    "invites",
    metadata,
    Column("id", String(16), primary_key=True),  # the lookup id embedded in the token
    Column("digest", String(64), nullable=False),
    Column("domain", String(253), ForeignKey("domains.name", ondelete="CASCADE"), nullable=False, index=True),
    Column("max_uses", Integer, nullable=False),
    Column("uses", Integer, nullable=False, default=0),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("comment", Text, nullable=False, default=""),
    Column("created_by", String(320), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

waitlist = Table(
    "waitlist",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("domain", String(253), ForeignKey("domains.name", ondelete="CASCADE"), nullable=False),
    Column("canonical", String(64), nullable=False),
    Column("spelling", String(64), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("domain", "canonical"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(16), primary_key=True),  # the lookup id embedded in the token
    Column("digest", String(64), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    #: SHA-256 (shortened) of the password hash when the session began: a changed password
    #: ends every session that was not explicitly carried over.
    Column("password_stamp", String(32), nullable=False),
    Column("mobile", Boolean, nullable=False, default=False),
    Column("user_agent", String(500), nullable=False, default=""),
    Column("client_ip", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=False),
    #: Until when the session's current refresh token may renew it (the session lives that
    #: long, its access token only until ``expires_at``).
    Column("refresh_expires_at", UTCDateTime, nullable=True),
)

#: Every refresh token a session was given, current and used: a used one presented again
#: means the token was stolen (or copied), and ends the session.
session_refresh_tokens = Table(
    "session_refresh_tokens",
    metadata,
    Column("id", String(16), primary_key=True),  # the lookup id embedded in the token
    Column(
        "session_id", String(16), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("digest", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

client_settings = Table(
    "client_settings",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("data", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("fields", JSON, nullable=False),
    #: Lowercased name, addresses and field keys and values, for ``?q=`` search.
    Column("search_text", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

contact_emails = Table(
    "contact_emails",
    metadata,
    Column("contact_id", Integer, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    #: Repeated from the contact so that one address is in one contact of a user's, at most.
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("address", String(320), nullable=False),
    Column("public_key", Text, nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("key_user_ids", JSON, nullable=True),
    Column("key_expires_at", UTCDateTime, nullable=True),
    PrimaryKeyConstraint("contact_id", "position"),
    UniqueConstraint("user_id", "address"),
)

public_keys = Table(
    "public_keys",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    #: The local user who first published it (NULL: a key only users uploaded, for external
    #: addresses); who may list and withdraw it is in ``key_listings``.
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True),
    #: The address it was first listed for (the owner's, or the first external one).
    Column("email", String(320), nullable=False, index=True),
    Column("armored", Text, nullable=False),
    Column("algorithm", String(32), nullable=False),
    Column("user_ids", JSON, nullable=False),
    Column("key_created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("published_at", UTCDateTime, nullable=False),
    Index("ix_public_keys_user_id_published_at", "user_id", "published_at"),
)

#: Where the directory lists a key: one row per (key, address), with the listing's source —
#: ``owner`` (published or confirmed by the address's owner, ``user_id`` set), ``user``
#: (uploaded by anyone for an external address) or ``fetched`` (from another key server).
key_listings = Table(
    "key_listings",
    metadata,
    Column(
        "fingerprint", String(64), ForeignKey("public_keys.fingerprint", ondelete="CASCADE"), nullable=False
    ),
    Column("email", String(320), nullable=False, index=True),
    Column("source", String(16), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("listed_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("fingerprint", "email"),
)

#: Keys uploaded over HKP for a local address, waiting for the owner's confirmation: the link
#: mailed to them carries a single-use token stored here as its SHA-256 digest.
key_confirmations = Table(
    "key_confirmations",
    metadata,
    Column("token_digest", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("armored", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Index("ix_key_confirmations_email_fingerprint", "email", "fingerprint"),
)

#: Users' votes on whether a user-sourced key really belongs to its addresses.
key_votes = Table(
    "key_votes",
    metadata,
    Column(
        "fingerprint", String(64), ForeignKey("public_keys.fingerprint", ondelete="CASCADE"), nullable=False
    ),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("authentic", Boolean, nullable=False),
    Column("voted_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("fingerprint", "user_id"),
)
