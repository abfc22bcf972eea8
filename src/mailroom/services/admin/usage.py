"""admin.usage.*: usage reports for billing and capacity (admins: everyone; users: themselves)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field

from mailroom.accounting.usage import recorder_of
from mailroom.domain.usage import Dimension, Granularity, UsageReport, UsageRow
from mailroom.errors import FieldError, InvalidParams
from mailroom.registry import GET, Authenticated, Context
from mailroom.services.admin._api import api
from mailroom.store import usage as store

#: The longest report, so that one request cannot scan years of minutes.
MAX_SPAN = timedelta(days=800)
_PERIOD_FORMATS = {"minute": "%Y-%m-%d %H:%M", "hour": "%Y-%m-%d %H", "day": "%Y-%m-%d", "month": "%Y-%m"}


def _period(text: str, granularity: str) -> str:
    when = datetime.strptime(text, _PERIOD_FORMATS[granularity]).replace(tzinfo=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@api.method("admin.usage.report", http=GET("/usage"), access=Authenticated())
async def report(
    ctx: Context,
    from_: Annotated[
        datetime | None,
        Field(alias="from", description="Start (inclusive); default: the start of this month."),
    ] = None,
    to: Annotated[datetime | None, Field(description="End (exclusive); default: now.")] = None,
    group_by: Annotated[
        list[Dimension], Field(description="Dimensions to group by: user, key, api, method, outcome.")
    ] = ["user"],  # noqa: B006 -- pydantic copies defaults
    granularity: Annotated[Granularity, Field(description="Length of a period.")] = "day",
) -> UsageReport:
    """Calls counted per period and per user, key, API, method or outcome, with their timing.

    Admins see everyone's calls; other callers see their own. Counts are written in batches
    every few seconds: the newest calls of other workers may not show yet.
    """
    now = ctx.rt.clock.now()
    end = _aware(to) or now
    start = _aware(from_) or end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start >= end:
        raise InvalidParams([FieldError("from", "must be before 'to'")])
    if end - start > MAX_SPAN:
        raise InvalidParams([FieldError("from", f"a report spans at most {MAX_SPAN.days} days")])
    recorder = recorder_of(ctx.rt)
    if recorder is not None:
        await recorder.flush()  # this process's newest counts
    p = ctx.principal
    user_id = None if p.is_admin else (p.user_id if p.user_id is not None else -1)
    dims = [d for d in ("user", "key", "api", "method", "outcome") if d in group_by]
    async with ctx.rt.db.read() as tx:
        rows = await store.report(
            tx, start=start, end=end, granularity=granularity, group_by=dims, user_id=user_id
        )
    out: list[UsageRow] = []
    totals: dict[str, Any] = {"calls": 0, "errors": 0, "duration_ms": 0.0}
    for row in rows:
        calls, duration, errors = row.calls, row.duration_ms, row.errors
        totals["calls"] += calls
        totals["errors"] += errors
        totals["duration_ms"] += duration
        out.append(
            UsageRow(
                period=_period(row.period, granularity),
                **{d: getattr(row, d) for d in dims},
                calls=calls,
                errors=errors,
                duration_ms_total=round(duration, 3),
                duration_ms_avg=round(duration / calls, 3) if calls else 0.0,
                duration_ms_max=round(row.max_ms, 3),
            )
        )
    totals["duration_ms"] = round(totals["duration_ms"], 3)
    return UsageReport(from_=start, to=end, granularity=granularity, group_by=dims, rows=out, totals=totals)
