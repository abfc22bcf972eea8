"""SQLite timestamps are fixed-width text for every year a datetime can hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailroom.store.types import parse_sqlite_utc, sqlite_utc_text


@pytest.mark.parametrize("year", [1, 75, 999, 1000, 1975, 2026, 9999])
def test_every_year_round_trips_and_sorts(year: int) -> None:
    when = datetime(year, 3, 1, 10, 0, 0, 5, tzinfo=UTC)
    text = sqlite_utc_text(when)
    assert len(text) == len("2026-03-01 10:00:00.000005+00:00")
    assert parse_sqlite_utc(text) == when


def test_text_order_is_time_order() -> None:
    instants = [datetime(y, 1, 1, tzinfo=UTC) for y in (1, 75, 999, 1000, 1975, 9999)]
    assert sorted(instants, key=sqlite_utc_text) == instants


def test_an_offset_is_converted_to_utc() -> None:
    east = datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert sqlite_utc_text(east) == "2025-12-31 23:30:00.000000+00:00"


def test_rows_written_before_years_were_padded_are_read() -> None:
    assert parse_sqlite_utc("75-03-01 10:00:00.000000+00:00") == datetime(75, 3, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="isoformat"):
        parse_sqlite_utc("not a time")
