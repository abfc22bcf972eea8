"""What every /query shares (RFC 8620 §5.5): the window of a sorted result by position or
anchor, and the FilterOperator shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mailroom.services.jmap._errors import MethodError

#: The most ids one /query answers, whatever ``limit`` asks (RFC 8620: the server may cap).
MAX_QUERY_LIMIT = 10_000


class FilterOperatorBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operator: Literal["AND", "OR", "NOT"]


def window(
    ids: Sequence[str],
    *,
    position: int,
    anchor: str | None,
    anchor_offset: int,
    limit: int | None,
) -> tuple[int, list[str], int | None]:
    """``(position, ids, limit if the server cut it)`` of the query result ``ids``."""
    if anchor is not None:
        try:
            at = ids.index(anchor)
        except ValueError:
            raise MethodError("anchorNotFound", f"{anchor} is not in the results") from None
        start = max(at + anchor_offset, 0)
    elif position < 0:
        start = max(len(ids) + position, 0)
    else:
        start = position
    cut: int | None = None
    if limit is None or limit > MAX_QUERY_LIMIT:
        cut = MAX_QUERY_LIMIT if (limit is not None or len(ids) - start > MAX_QUERY_LIMIT) else None
        limit = MAX_QUERY_LIMIT
    if limit < 0:
        raise MethodError("invalidArguments", "limit must not be negative")
    return start, list(ids[start : start + limit]), cut


__all__ = ["Field", "FilterOperatorBase", "window"]
