"""Column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, String, TypeDecorator
from sqlalchemy.types import TypeEngine


def sqlite_utc_text(value: datetime) -> str:
    """Fixed-width UTC text for SQLite (``0075-03-01 10:00:00.000000+00:00``): it sorts and
    compares like the instants it stands for. ``isoformat`` pads every year to four digits;
    ``strftime("%Y")`` does not, and a year before 1000 (an email's ``Date: 0075-...``)
    was stored as ``75-03-01`` and could not be read back."""
    return value.astimezone(UTC).isoformat(" ", "microseconds")


def parse_sqlite_utc(value: str) -> datetime:
    """A stored SQLite timestamp (with or without the ``+00:00`` older rows lack) → aware UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        # Written before years were padded: "75-03-01 ..." is year 75.
        year, sep, rest = value.partition("-")
        if not (sep and year.isdigit() and len(year) < 4):
            raise
        parsed = datetime.fromisoformat(f"{int(year):04d}-{rest}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out.

    PostgreSQL stores ``timestamptz``. SQLite has no time type; SQLAlchemy's DATETIME
    emulation parses every value with a regular expression (~5 µs each, a hot cost on
    lists), so on SQLite we store fixed-width ISO text and parse it with the C-coded
    ``datetime.fromisoformat``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        if dialect.name == "sqlite":
            return sqlite_utc_text(value)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return parse_sqlite_utc(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]
