"""Lists: ``offset``/``limit`` in, ``{items, total, offset, limit}`` out, stable order."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field

from mailroom.domain.numbers import INT32_MAX

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000

Offset = Annotated[int, Field(ge=0, le=INT32_MAX, description="How many items to skip.")]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description=f"How many items at most (max {MAX_LIMIT}).")]


class Page(BaseModel, Generic[T]):
    """One page of a list, in a stable order."""

    items: list[T]
    total: int = Field(description="How many items the whole list has.")
    offset: int
    limit: int
