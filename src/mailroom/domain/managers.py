"""API schemas for domain managers: users who administer one domain without being global admins."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mailroom.domain.names import EmailAddress


class ManagerCreate(BaseModel):
    """Make an existing user (of any domain) a manager of the domain."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "alice@example.org"}]}
    )

    email: EmailAddress = Field(description="The user who becomes a manager.")


class DomainManager(BaseModel):
    """A manager of a domain."""

    email: str
    created_at: datetime = Field(description="When the user became a manager of the domain.")
