"""Server-side sorting of a list: ``sort`` names a field, with ``-`` before it for descending.

Each list method types its ``sort`` parameter as a ``Literal`` of the fields it sorts on, so
validation refuses any other (``invalid_params``) on every protocol, and the store maps the
field to its column, with the list's natural key after it so that pages never overlap.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

SORT_DESCRIPTION = "A field to sort by; a leading - sorts descending."


def parse_sort(sort: str) -> tuple[str, bool]:
    """(field, descending) of a ``sort`` value."""
    return (sort[1:], True) if sort.startswith("-") else (sort, False)


DomainSort = Annotated[
    Literal["name", "-name", "created_at", "-created_at"], Field(description=SORT_DESCRIPTION)
]
UserSort = Annotated[
    Literal[
        "email",
        "-email",
        "display_name",
        "-display_name",
        "quota_bytes",
        "-quota_bytes",
        "quota_bytes_used",
        "-quota_bytes_used",
        "created_at",
        "-created_at",
    ],
    Field(description=SORT_DESCRIPTION),
]
AliasSort = Annotated[
    Literal["address", "-address", "created_at", "-created_at"], Field(description=SORT_DESCRIPTION)
]
RelaySort = Annotated[
    Literal["name", "-name", "smarthost", "-smarthost", "created_at", "-created_at"],
    Field(description=SORT_DESCRIPTION),
]
ApiKeySort = Annotated[
    Literal[
        "created_at",
        "-created_at",
        "name",
        "-name",
        "last_used_at",
        "-last_used_at",
        "expires_at",
        "-expires_at",
    ],
    Field(description=SORT_DESCRIPTION),
]
QueueSort = Annotated[
    Literal["-id", "id", "next_attempt_at", "-next_attempt_at", "size", "-size", "attempts", "-attempts"],
    Field(description=SORT_DESCRIPTION),
]
AuditSort = Annotated[Literal["-at", "at", "method", "-method"], Field(description=SORT_DESCRIPTION)]
