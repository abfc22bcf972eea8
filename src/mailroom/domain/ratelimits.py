"""API schemas for rate limits an API key carries itself."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


def check_limit(value: str) -> str:
    """A rate such as ``100/minute`` or ``10/5 seconds`` (the ``limits`` notation), one per text."""
    from limits import parse_many

    try:
        items = parse_many(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a limit such as 100/minute or 5000/day") from None
    if len(items) != 1:
        raise ValueError("one limit per rule (write two rules for 100/minute and 5000/day)")
    return value.strip()


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
