"""JMAP's own tables: push subscriptions (RFC 8620 §7.2), states of the types outside the
change log, what identities keep beyond the address and name."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, ForeignKey, Integer, String, Table, Text

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

# Types outside the account's mail change log (Identity, EmailSubmission) get states of their
# own: the objects last seen (a digest of each) and a counter per account and type. Each
# read compares what is there now with what was seen (store/jmap_states.py): a change made
# anywhere (a manager granting an identity, the queue delivering a submission) takes the
# next state at the first read after it.
jmap_type_states = Table(
    "jmap_type_states",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("state", BigInteger, nullable=False),
)
jmap_objects_seen = Table(
    "jmap_objects_seen",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("object_id", String(64), primary_key=True),
    Column("digest", String(64), nullable=False),
    # The state that created it, and the state of its last change (its destruction too).
    Column("created", BigInteger, nullable=False),
    Column("changed", BigInteger, nullable=False),
    Column("destroyed", Boolean, nullable=False),
)
# What JMAP keeps of an identity beyond the address and name (RFC 8621 §6).
jmap_identities = Table(
    "jmap_identities",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("reply_to", JSON, nullable=True),
    Column("bcc", JSON, nullable=True),
    Column("text_signature", Text, nullable=False),
    Column("html_signature", Text, nullable=False),
)
# A mailbox's sortOrder (RFC 8621 §2), when the user set one (else the server's default).
jmap_mailboxes = Table(
    "jmap_mailboxes",
    metadata,
    Column("label_id", Integer, ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("sort_order", BigInteger, nullable=False),
)
# The header fields of message blobs, for Email/query's ``header`` filter (store/jmap_headers.py):
# one row per field (its name in lower case, its decoded value case-folded), and a row with
# the name "" once a blob was read. Filled when a header filter first meets a blob; a blob
# never changes (content-addressed), so neither do its rows.
jmap_blob_headers = Table(
    "jmap_blob_headers",
    metadata,
    Column("sha", String(64), ForeignKey("blobs.sha", ondelete="CASCADE"), primary_key=True),
    Column("name", String(998), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("value", Text, nullable=False),
)
# How far the account's emails are known to have their header fields read (store/jmap_headers.py):
# every email created up to change-log state ``modseq`` has. Lets the header filter check
# only the emails created since (a range of the change log), not every email of the account.
jmap_header_marks = Table(
    "jmap_header_marks",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("modseq", BigInteger, nullable=False),
)
