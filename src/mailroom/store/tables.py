"""All tables, so that ``metadata`` is complete wherever it is imported (Alembic, tests)."""

from __future__ import annotations

from mailroom.store import (
    accounting_schema,
    client_schema,
    identity_schema,
    imap_schema,
    jmap_schema,
    mail_schema,
    outbound_schema,
    pop3_schema,
    schema,
    uploads_schema,
)
from mailroom.store.schema import metadata

__all__ = [
    "accounting_schema",
    "client_schema",
    "identity_schema",
    "imap_schema",
    "jmap_schema",
    "mail_schema",
    "metadata",
    "outbound_schema",
    "pop3_schema",
    "schema",
    "uploads_schema",
]
