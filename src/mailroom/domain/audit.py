"""API schemas for the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEntry(BaseModel):
    """One change made through the admin API or the CLI. Secrets are never included."""

    id: int
    at: datetime
    principal: str = Field(description="Who: an address, key:<id>, system (the CLI), ...")
    key_id: str | None = Field(description="The API key used, if any.")
    protocol: str = Field(description="rest, jsonrpc, xmlrpc, cli, inprocess, ...")
    client_ip: str | None
    request_id: str | None
    method: str
    object: str
    target: str | None = Field(description="What was changed (an address, a domain, domain/name, a key id).")
    domain: str | None = Field(description="The mail domain the change belongs to, if any.")
    params: dict[str, Any] = Field(description="The call's parameters, secrets redacted.")
    changes: dict[str, Any] | None = Field(
        description='Before/after per changed field ({"quota_bytes": {"before": 1, "after": 2}}); '
        "null when the object could not be read."
    )
