"""Column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, String, TypeDecorator
from sqlalchemy.types import TypeEngine

#: Fixed-width UTC text on SQLite: sorts and compares like the instants it stands for.
_SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f+00:00"


def parse_sqlite_utc(value: str) -> datetime:
    """A stored SQLite timestamp (with or without the ``+00:00`` older rows lack) → aware UTC."""
    parsed = datetime.fromisoformat(value)
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
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.strftime(_SQLITE_FORMAT)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return parse_sqlite_utc(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]
