"""API schemas of sign-up invites and the waitlist."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mailroom.domain.names import DomainName


class InviteCreate(BaseModel):
    """A new invite token for sign-up in ``domain``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"domain": "example.org", "max_uses": 10, "comment": "beta testers"}]
        },
    )

    domain: DomainName
    max_uses: int = Field(
        default=1, ge=1, le=1_000_000, description="How many accounts the token may create."
    )
    expires_at: datetime | None = Field(
        default=None, description="When the token stops working; null: never."
    )
    comment: str = Field(default="", max_length=1000)


class Invite(BaseModel):
    """An invite as the API shows it (never the token)."""

    id: str
    domain: str
    max_uses: int
    uses: int
    expires_at: datetime | None
    comment: str
    created_by: str
    created_at: datetime


class InviteCreated(Invite):
    token: str = Field(description="The invite token (``reg_token`` at sign-up); shown only now.")


class WaitlistEntry(BaseModel):
    """Someone waiting for an account."""

    id: int
    domain: str
    username: str = Field(description="The user name as they spelled it.")
    position: int = Field(description="Place in the domain's queue (1 is next).")
    created_at: datetime
