"""API schemas for API keys."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mailroom.domain.names import EmailAddress

_SCOPE = re.compile(r"^[a-zA-Z0-9_.*?\[\]!-]{1,100}$")


class ApiKeyCreate(BaseModel):
    """A new API key. The response carries the secret once, as ``key``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "backup", "scopes": ["admin.config.export"], "allowed_networks": ["10.0.0.0/8"]}
            ]
        },
    )

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")
    scopes: list[str] | None = Field(
        default=None,
        max_length=100,
        description="Method-name globs the key may call (admin.users.*); "
        "null: every method its owner may call.",
    )
    allowed_networks: list[str] | None = Field(
        default=None, max_length=100, description="CIDRs the key may be used from; null: anywhere."
    )
    expires_at: datetime | None = Field(default=None, description="When the key stops working; null: never.")
    owner: EmailAddress | None = Field(
        default=None, description="The user the key acts as (admins only; default: the caller)."
    )
    admin: bool = Field(default=False, description="A global-admin key owned by no user (admins only).")

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for scope in value:
            if not _SCOPE.match(scope):
                raise ValueError(f"{scope!r} is not a method-name pattern such as admin.users.*")
        return sorted(set(value))

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for net in value:
            try:
                out.append(str(ipaddress.ip_network(net.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{net!r} is not an IP network (CIDR)") from None
        return out

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2027-01-01T00:00:00Z)")
        return value


class ApiKey(BaseModel):
    """An API key as listings show it: never the secret."""

    id: str
    name: str
    owner: str | None = Field(description="The user the key acts as; null for an admin key.")
    admin: bool
    scopes: list[str] | None
    allowed_networks: list[str] | None
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The secret, shown this once: use it as 'Authorization: Bearer <key>'.")
