"""API schemas for alternative domains: other names of a domain, sharing its users and aliases.

Mail to ``alice@alternative.example`` is mail to ``alice@example.org`` when
``alternative.example`` is an alternative of ``example.org``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mailroom.domain.names import DomainName


class AlternativeCreate(BaseModel):
    """A new alternative name for a domain."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "example.net", "comment": "old name"}]}
    )

    name: DomainName
    comment: str = Field(default="", max_length=1000)


class Alternative(BaseModel):
    """An alternative domain as the API shows it."""

    name: str
    domain: str = Field(description="The domain it is another name of.")
    comment: str
    created_at: datetime
