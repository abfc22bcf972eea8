"""Tables of access and accounting: usage counts, the audit log, idempotency keys, key limits.

``usage_counts`` holds one row per (minute, principal, key, API, method, outcome): the
runner's accounting filter adds calls up in memory and flushes them in batches (an upsert
that adds), so a call never costs a database write of its own. Usage rows have no foreign
keys: billing reports must outlive the users and keys they count.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
)

from mailroom.store.schema import metadata
from mailroom.store.types import UTCDateTime

usage_counts = Table(
    "usage_counts",
    metadata,
    Column("minute", UTCDateTime, nullable=False),
    #: Who: a user's address, ``key:<id>`` for an owner-less key, ``net:<cidr>`` when anonymous.
    Column("principal", String(320), nullable=False),
    Column("user_id", Integer, nullable=True),
    Column("key_id", String(16), nullable=False),  # "" when no API key was used
    Column("api", String(64), nullable=False),
    Column("method", String(200), nullable=False),
    Column("outcome", String(64), nullable=False),  # "ok" or the error code
    Column("calls", BigInteger, nullable=False),
    Column("duration_ms", Float, nullable=False),  # the calls' total
    Column("max_ms", Float, nullable=False),
    PrimaryKeyConstraint("minute", "principal", "key_id", "api", "method", "outcome"),
    Index("ix_usage_counts_user_id_minute", "user_id", "minute"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("principal", String(320), nullable=False),
    Column("user_id", Integer, nullable=True),
    Column("key_id", String(16), nullable=True),
    Column("protocol", String(32), nullable=False),
    Column("client_ip", String(64), nullable=True),
    Column("request_id", String(200), nullable=True),
    Column("method", String(200), nullable=False, index=True),
    Column("object", String(64), nullable=False),
    Column("target", String(400), nullable=True),
    #: The mail domain the change belongs to, so managers can read their domains' entries.
    Column("domain", String(253), nullable=True, index=True),
    Column("params", JSON, nullable=False),
    Column("changes", JSON, nullable=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    #: Whose key: ``user:<id>``, ``key:<id>``, ``net:<cidr>``, ``system``.
    Column("scope", String(340), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of method and parameters
    Column("state", String(16), nullable=False),  # running | done
    Column("status", Integer, nullable=True),
    Column("result", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    PrimaryKeyConstraint("scope", "key"),
)

api_key_limits = Table(
    "api_key_limits",
    metadata,
    Column("key_id", String(16), ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("limits", JSON, nullable=False),  # [{"limit": "100/minute", "methods": "*"}]
    Column("updated_at", UTCDateTime, nullable=False),
)

__all__ = ["api_key_limits", "audit_log", "idempotency_keys", "usage_counts"]
