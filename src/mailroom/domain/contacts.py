"""API schemas of contacts: a name, addresses (each with an optional OpenPGP key), free fields."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, field_validator

from mailroom.domain.names import EmailAddress
from mailroom.domain.patches import never_null
from mailroom.domain.pgp import ArmoredKey, Fingerprint, algorithm_name
from mailroom.domain.users import ONE_LINE

MAX_EMAILS = 50
MAX_FIELDS = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _one_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must be one line without control characters")
    return value


ContactName = Annotated[
    str, Strict(), Field(min_length=1, max_length=200, json_schema_extra=ONE_LINE), AfterValidator(_one_line)
]
# No published pattern on the key: pydantic would turn it into ``patternProperties``, which
# leaves keys outside the pattern unconstrained instead of refused.
FieldKey = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_one_line)]
FieldValue = Annotated[str, Strict(), Field(max_length=1000)]
ContactFields = Annotated[
    dict[FieldKey, FieldValue],
    Field(max_length=MAX_FIELDS, description="Free fields: phone, company, birthday, notes..."),
]


class ContactEmailIn(BaseModel):
    """An address of a contact. ``public_key`` is parsed (its fingerprint computed and checked
    against ``fingerprint`` when both are given); a ``fingerprint`` alone is looked up in the
    server's key directory."""

    model_config = ConfigDict(extra="forbid")

    address: EmailAddress
    public_key: ArmoredKey | None = None
    fingerprint: Fingerprint | None = None


def _distinct(emails: list[ContactEmailIn]) -> list[ContactEmailIn]:
    seen: set[str] = set()
    for e in emails:
        if e.address in seen:
            raise ValueError(f"{e.address} is listed twice")
        seen.add(e.address)
    return emails


ContactEmails = Annotated[list[ContactEmailIn], Field(max_length=MAX_EMAILS), AfterValidator(_distinct)]


class ContactCreate(BaseModel):
    """A new contact."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "John Smith",
                    "emails": [{"address": "john@example.net"}],
                    "fields": {"phone": "+44 20 7946 0000", "company": "Example Ltd"},
                }
            ]
        },
    )

    name: ContactName
    emails: ContactEmails = Field(default_factory=list)
    fields: ContactFields = Field(default_factory=dict)


class ContactUpdate(BaseModel):
    """What to change; absent parts stay. ``emails`` and ``fields`` are replaced whole."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=never_null("name", "emails", "fields"))

    name: ContactName | None = None
    emails: ContactEmails | None = None
    fields: ContactFields | None = None

    @field_validator("name", "emails", "fields", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class ContactEmail(BaseModel):
    address: str
    public_key: str | None
    fingerprint: str | None
    key_user_ids: list[str] | None = Field(description="User ids of the key (name <address>).")
    key_expires_at: datetime | None


class Contact(BaseModel):
    """A contact as its owner sees it."""

    id: int
    name: str
    emails: list[ContactEmail]
    fields: dict[str, str]
    created_at: datetime
    updated_at: datetime


class PublicKey(BaseModel):
    """A key in the directory."""

    fingerprint: str
    email: str = Field(description="The address the key was published for (its owner's).")
    algorithm: Annotated[str, AfterValidator(algorithm_name)] = Field(
        description="Public-key algorithm: RSA, Ed25519, ECDSA, DSA, ...", examples=["Ed25519"]
    )
    user_ids: list[str]
    key_created_at: datetime
    expires_at: datetime | None
    published_at: datetime
    armored: str = Field(description="The key, ASCII-armored.")
    source: Literal["owner", "user", "fetched"] = Field(
        default="owner",
        description="Where the listing for `email` came from: `owner` (published or confirmed by the "
        "address's owner), `user` (uploaded by someone for an external address), `fetched` (from "
        "another key server). See docs/keyserver.md, the trust model.",
    )
    votes_authentic: int = Field(default=0, description="Users who vote that the key is authentic.")
    votes_not_authentic: int = Field(default=0, description="Users who vote that it is not.")
    my_vote: bool | None = Field(default=None, description="The caller's own vote (None: none).")
    served: bool = Field(
        default=True, description="Whether HKP and WKD give this key out for `email` under the trust model."
    )
