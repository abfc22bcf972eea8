"""API schemas for mail domains."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from mailroom.domain.names import DomainName
from mailroom.domain.numbers import ByteSize, Count
from mailroom.domain.patches import never_null


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DomainLimits(_Strict):
    max_users: Count | None = Field(default=None, description="Most mailboxes in the domain; null: no limit.")
    max_aliases: Count | None = Field(default=None, description="Most aliases in the domain; null: no limit.")
    max_quota_bytes: ByteSize | None = Field(
        default=None, description="Largest quota one mailbox may have; null: no limit."
    )


class DomainCreate(DomainLimits):
    """A new mail domain."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "example.org", "comment": "Main domain", "max_users": 100}]},
    )

    name: DomainName
    comment: str = Field(default="", max_length=1000)
    signup_enabled: bool = Field(default=False, description="Whether people may sign up in this domain.")


class DomainUpdate(_Strict):
    """Fields to change; absent fields stay as they are, null clears a limit."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=never_null("comment", "signup_enabled"))

    @field_validator("comment", "signup_enabled", mode="before")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        # Absent means "keep"; an explicit null would mean "clear", which these can't be.
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null; leave it out to keep it")
        return value

    comment: str | None = Field(default=None, max_length=1000)
    max_users: Count | None = None
    max_aliases: Count | None = None
    max_quota_bytes: ByteSize | None = None
    signup_enabled: bool | None = None


class Domain(BaseModel):
    """A mail domain as the API shows it."""

    name: str
    comment: str
    max_users: int | None
    max_aliases: int | None
    max_quota_bytes: int | None
    signup_enabled: bool
    dkim_selector: str | None = Field(description="Selector of the domain's DKIM key, null when it has none.")
    created_at: datetime
    updated_at: datetime
