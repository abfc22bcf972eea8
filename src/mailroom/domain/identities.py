"""API schemas for send-as identities: addresses a user may send as beyond their own and
their aliases' (delivery/senders.py has the rule)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mailroom.domain.names import EmailAddress
from mailroom.domain.users import DisplayName


class IdentityCreate(BaseModel):
    """Let a user send as another address: a shared one of a domain, or an external one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"address": "support@example.org", "display_name": "Support"}]},
    )

    address: EmailAddress = Field(description="The address the user may then use as sender.")
    display_name: DisplayName = ""


class Identity(BaseModel):
    """A send-as identity of a user."""

    user: str = Field(description="The address of the user who may send as ``address``.")
    address: str
    display_name: str = Field(description="The name a mail client shows beside the address in From.")
    created_at: datetime
