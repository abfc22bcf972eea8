"""API schemas for usage reports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Granularity = Literal["minute", "hour", "day", "month"]
Dimension = Literal["user", "key", "api", "method", "outcome"]


class UsageRow(BaseModel):
    """Calls in one period for one combination of the grouped dimensions."""

    period: str = Field(description="Start of the period, UTC (2026-01-31T12:00:00Z).")
    user: str | None = Field(
        default=None,
        description="Who called: an address, key:<id> for an owner-less key, net:<cidr> when anonymous.",
    )
    key: str | None = Field(default=None, description="The API key used (empty: none).")
    api: str | None = None
    method: str | None = None
    outcome: str | None = Field(default=None, description="ok, or the error code.")
    calls: int
    errors: int = Field(description="Calls whose outcome was an error.")
    duration_ms_total: float
    duration_ms_avg: float
    duration_ms_max: float


class UsageReport(BaseModel):
    """Usage between ``from`` (inclusive) and ``to`` (exclusive), by period and dimension."""

    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    granularity: Granularity
    group_by: list[Dimension]
    rows: list[UsageRow]
    totals: dict[str, float] = Field(description="calls, errors and duration_ms over the whole report.")

    model_config = {"populate_by_name": True}
