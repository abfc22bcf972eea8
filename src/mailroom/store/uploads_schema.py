"""Tables of attachment uploads and of the per-domain attachment policy.

An upload is a blob (content-addressed, like messages) owned by one user. Until a sent email
or a draft uses it (``used_by_email``) it expires ``upload_ttl_hours`` after it was made;
the expiry task deletes the row and, when nothing else refers to it, the blob.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table

from mailroom.store import mail_schema  # noqa: F401  (blobs is referenced by name)
from mailroom.store.schema import metadata
from mailroom.store.types import UTCDateTime

uploads = Table(
    "uploads",
    metadata,
    # "up_" + 32 random URL-safe characters: the attachment id clients use.
    Column("id", String(40), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("blob_sha", String(64), ForeignKey("blobs.sha"), nullable=False, index=True),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("filename", String(255), nullable=True),
    Column("encrypted", Boolean, nullable=False, default=False),  # OpenPGP, detected by content
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    # The email (sent or draft) that uses it; it no longer expires then.
    Column("used_by_email", Integer, nullable=True),
    Index("ix_uploads_expiry", "used_by_email", "expires_at"),
)

attachment_policies = Table(
    "attachment_policies",
    metadata,
    Column("domain", String(253), ForeignKey("domains.name", ondelete="CASCADE"), primary_key=True),
    # Attachments of this domain's users must be OpenPGP-encrypted.
    Column("require_encrypted", Boolean, nullable=False, default=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
