"""API schemas for rate limits an API key carries itself."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mailroom.settings import check_limit


class KeyLimit(BaseModel):
    """One limit on an API key: ``limit`` per window for the methods matching ``methods``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"limit": "100/minute"}]})

    limit: str = Field(description="Amount per window: 100/minute, 5000/day.")
    methods: str = Field(
        default="*", pattern=r"^[a-zA-Z0-9_.*?\[\]!-]{1,100}$", description="Method-name glob (mail.*)."
    )

    @field_validator("limit")
    @classmethod
    def _limit(cls, value: str) -> str:
        return check_limit(value)


class KeyLimits(BaseModel):
    """The limits of one API key, on top of the server's rules."""

    model_config = ConfigDict(extra="forbid")

    limits: list[KeyLimit] = Field(default_factory=list, max_length=20)
