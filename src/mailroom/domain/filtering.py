"""The admin lists' text filter ``q``: a few characters of a name or an address."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

TextFilter = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=320,
        description="Only the items whose name or address contains this text (case aside).",
    ),
]
