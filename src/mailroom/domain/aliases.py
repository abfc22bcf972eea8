"""API schemas for aliases, and the rules an alias obeys beyond the types of its fields.

An alias forwards mail for one address (or, as a wildcard, for a pattern of addresses in one
domain) to one or more destinations, local or external. A wildcard alias has ``*`` in its
local part (``sales-*@example.org``; ``*@example.org`` is the domain's catch-all) and must say
``wildcard: true``, so that nobody makes a catch-all by a slip of the keyboard.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mailroom.domain.names import AliasAddress, EmailAddress

MAX_DESTINATIONS = 100


def _not_a_pattern(address: str) -> str:
    if "*" in address:
        raise ValueError("a destination cannot contain *: mail is delivered to real addresses only")
    return address


def _deduplicate(addresses: list[str]) -> list[str]:
    # dict keeps insertion order: the first occurrence of each address wins its place.
    return list(dict.fromkeys(addresses))


Destination = Annotated[EmailAddress, AfterValidator(_not_a_pattern)]
Destinations = Annotated[
    list[Destination],
    Field(
        min_length=1,
        max_length=MAX_DESTINATIONS,
        description=f"Where mail goes: 1-{MAX_DESTINATIONS} addresses, local or external; "
        "duplicates are dropped, order is kept.",
        examples=[["alice@example.org", "bob@example.net"]],
    ),
    AfterValidator(_deduplicate),
]
Comment = Annotated[str, Field(max_length=1000)]


def alias_problems(address: str, *, wildcard: bool, destinations: list[str] | None) -> dict[str, str]:
    """What is wrong with an alias as a whole, by field name; empty when it is valid.

    The field types have checked each value alone; these rules relate them: the wildcard flag
    must match a ``*`` in the local part, and an alias may not forward to itself.
    """
    problems: dict[str, str] = {}
    local = address.rpartition("@")[0]
    if "*" in local and not wildcard:
        problems["address"] = "* makes the alias a wildcard: set wildcard to true to mean it"
    elif wildcard and "*" not in local:
        problems["wildcard"] = "a wildcard alias needs * in its local part, such as *@example.org"
    if destinations is not None and address in destinations:
        problems["destinations"] = f"{address} cannot be its own destination"
    return problems


class AliasCreate(BaseModel):
    """A new alias."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"address": "sales@example.org", "destinations": ["alice@example.org", "bob@example.net"]},
                {"address": "*@example.org", "destinations": ["postmaster@example.org"], "wildcard": True},
            ]
        },
    )

    address: AliasAddress = Field(description="The address mail is sent to; * patterns need wildcard.")
    destinations: Destinations
    wildcard: bool = Field(default=False, description="Whether * in the address matches any text.")
    comment: Comment = ""


class AliasUpdate(BaseModel):
    """Fields to change; absent fields stay as they are. The address itself cannot change."""

    model_config = ConfigDict(extra="forbid")

    destinations: Destinations | None = None
    comment: Comment | None = None


class Alias(BaseModel):
    """An alias as the API shows it."""

    address: str
    destinations: list[str]
    wildcard: bool
    comment: str
    created_at: datetime
    updated_at: datetime
