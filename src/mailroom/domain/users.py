"""API schemas for users (mailboxes) and the rules that span several of their fields.

Three models, one per use: :class:`UserCreate` (input), :class:`UserUpdate` (input, only
the fields sent change) and :class:`User` (output). The output has no password field at
all, so no code path can return a password or its hash by accident.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator

from mailroom.domain.names import EmailAddress
from mailroom.domain.numbers import ByteSize
from mailroom.domain.patches import drop_null
from mailroom.errors import FieldError

PASSWORD_MIN = 8
PASSWORD_MAX = 1024
DEFAULT_QUOTA_BYTES = 1024**3
DEFAULT_SPAM_THRESHOLD = 5.0
MAX_FORWARD_DESTINATIONS = 100

#: Fields a user may change on their own mailbox; the others are for managers and admins.
SELF_SERVICE_FIELDS = frozenset(
    {
        "password",
        "display_name",
        "forward_enabled",
        "forward_destinations",
        "forward_keep",
        "reply_enabled",
        "reply_subject",
        "reply_body",
        "reply_start",
        "reply_end",
        "spam_enabled",
        "spam_mark_as_read",
        "spam_threshold",
    }
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: What ``_one_line`` accepts, published (JSON Schema regexes are ECMA-262: ``\u`` escapes).
ONE_LINE = {"pattern": "^[^\\u0000-\\u001f\\u007f]*$"}


def _one_line(value: str) -> str:
    # Display names and subjects end up in mail headers: a CR or LF would inject headers.
    if _CONTROL.search(value):
        raise ValueError("must be one line without control characters")
    return value


def _check_password(value: object) -> object:
    # The length check lives here, not in Field(min_length=...), because pydantic words
    # SecretStr length errors as "items"; non-strings fall through to SecretStr's own error.
    if isinstance(value, str):
        if len(value) < PASSWORD_MIN:
            raise ValueError(f"must be at least {PASSWORD_MIN} characters")
        if len(value) > PASSWORD_MAX:
            raise ValueError(f"must be at most {PASSWORD_MAX} characters")
    return value


Password = Annotated[
    SecretStr,
    BeforeValidator(_check_password),
    Field(
        description="Write-only: stored as an argon2id hash, never returned.",
        json_schema_extra={"minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX},
    ),
]
DisplayName = Annotated[
    str,
    AfterValidator(_one_line),
    Field(max_length=200, description="Name shown beside the address.", json_schema_extra=ONE_LINE),
]
QuotaBytes = Annotated[ByteSize, Field(description="Bytes of mail the mailbox may hold.")]


def _dedupe(value: list[str]) -> list[str]:
    """Forward destinations keep their order; a repeated address is kept once."""
    return list(dict.fromkeys(value))


ForwardDestinations = Annotated[
    list[EmailAddress],
    AfterValidator(_dedupe),
    Field(max_length=MAX_FORWARD_DESTINATIONS, description="Addresses incoming mail is forwarded to."),
]
ReplySubject = Annotated[
    str,
    AfterValidator(_one_line),
    Field(max_length=255, description="Subject of the auto-reply.", json_schema_extra=ONE_LINE),
]
ReplyBody = Annotated[str, Field(max_length=10_000, description="Text of the auto-reply.")]
SpamThreshold = Annotated[
    float,
    Field(
        ge=0,
        le=100,
        allow_inf_nan=False,
        description="Spam score (SpamAssassin/rspamd) from which mail is spam; kept to six decimals.",
    ),
    # Scanners' scores carry a decimal or two; digits beyond the sixth are float noise
    # (0.1 + 0.2), not a threshold anyone meant.
    AfterValidator(lambda v: round(v, 6)),
]


def rule_errors(email: str, state: Mapping[str, Any], prefix: str) -> list[FieldError]:
    """Rules between fields, checked on the whole (merged) state of a user.

    Create checks the new user; update checks the stored user with the changes applied,
    so that turning forwarding on without destinations is refused either way. ``prefix``
    locates errors in the request (``user.`` or ``changes.``).
    """
    errors: list[FieldError] = []
    destinations = state.get("forward_destinations") or []
    if state.get("forward_enabled") and not destinations:
        errors.append(
            FieldError(
                f"{prefix}forward_destinations", "forwarding is enabled: give at least one destination"
            )
        )
    if email in destinations:
        errors.append(FieldError(f"{prefix}forward_destinations", "a mailbox cannot forward to itself"))
    start, end = state.get("reply_start"), state.get("reply_end")
    if start is not None and end is not None and end < start:
        errors.append(FieldError(f"{prefix}reply_end", "the auto-reply cannot end before it starts"))
    return errors


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Strict):
    """A new mailbox. Its domain (the part after @) must be an existing mail domain."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "alice@example.org",
                    "password": "correct horse battery staple",
                    "display_name": "Alice",
                }
            ]
        },
    )

    email: EmailAddress
    password: Password
    display_name: DisplayName = ""
    quota_bytes: QuotaBytes | None = Field(
        default=None,
        description="Bytes of mail the mailbox may hold; default: the domain's max_quota_bytes, or 1 GiB.",
    )
    enabled: bool = Field(default=True, description="A disabled user cannot log in or receive mail.")
    enable_imap: bool = True
    enable_pop: bool = True
    enable_smtp: bool = True
    global_admin: bool = Field(default=False, description="Administers every domain (global admins only).")
    forward_enabled: bool = False
    forward_destinations: ForwardDestinations = Field(default_factory=list)
    forward_keep: bool = Field(default=True, description="Keep a copy of forwarded mail in the mailbox.")
    reply_enabled: bool = False
    reply_subject: ReplySubject = ""
    reply_body: ReplyBody = ""
    reply_start: date | None = Field(default=None, description="First day of the auto-reply; null: now.")
    reply_end: date | None = Field(default=None, description="Last day of the auto-reply; null: open-ended.")
    spam_enabled: bool = True
    spam_mark_as_read: bool = False
    spam_threshold: SpamThreshold = DEFAULT_SPAM_THRESHOLD
    change_pw_next_login: bool = Field(default=False, description="Ask the user for a new password at login.")
    allow_spoofing: bool = Field(
        default=False, description="May send mail with any sender address (set by global admins only)."
    )


# Fields of UserUpdate that may be absent but never null: their columns have no null.
_NOT_NULL = (
    "password",
    "display_name",
    "quota_bytes",
    "enabled",
    "enable_imap",
    "enable_pop",
    "enable_smtp",
    "global_admin",
    "forward_enabled",
    "forward_destinations",
    "forward_keep",
    "reply_enabled",
    "reply_subject",
    "reply_body",
    "spam_enabled",
    "spam_mark_as_read",
    "spam_threshold",
    "change_pw_next_login",
    "allow_spoofing",
    "auth_source",
)


def _schema_without_null(schema: dict[str, Any]) -> None:
    """Publish the never-null fields of UserUpdate without the ``null`` their type admits.

    ``X | None = None`` is how pydantic tells "absent" from a value (with ``exclude_unset``)
    while keeping error locations plain (``changes.quota_bytes``); null itself is refused by
    :meth:`UserUpdate._not_null`, so the schema must not offer it.
    """
    drop_null(schema, _NOT_NULL)


class UserUpdate(_Strict):
    """Fields to change; absent fields stay as they are. Only the reply dates accept null.

    A user changing their own mailbox may set only the password, the display name,
    forwarding, the auto-reply and the spam settings; the other fields are for managers of
    the domain and admins, and ``global_admin`` for global admins alone.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_schema_without_null)

    password: Password | None = None
    display_name: DisplayName | None = None
    quota_bytes: QuotaBytes | None = None
    enabled: bool | None = None
    enable_imap: bool | None = None
    enable_pop: bool | None = None
    enable_smtp: bool | None = None
    global_admin: bool | None = None
    forward_enabled: bool | None = None
    forward_destinations: ForwardDestinations | None = None
    forward_keep: bool | None = None
    reply_enabled: bool | None = None
    reply_subject: ReplySubject | None = None
    reply_body: ReplyBody | None = None
    reply_start: date | None = Field(default=None, description="null clears the start date.")
    reply_end: date | None = Field(default=None, description="null clears the end date.")
    spam_enabled: bool | None = None
    spam_mark_as_read: bool | None = None
    spam_threshold: SpamThreshold | None = None
    change_pw_next_login: bool | None = None
    allow_spoofing: bool | None = None
    auth_source: Literal["local", "ldap"] | None = Field(
        default=None,
        description="Global admins: ldap makes the LDAP directory check this user's password (the "
        "stored one is forgotten); local needs a new password in the same change.",
    )

    @field_validator(*_NOT_NULL)
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class User(BaseModel):
    """A mailbox as the API shows it. There is no password field: it is write-only.

    Immutable: the store hands out one instance per state of a user (``store/users.py``),
    and the REST front-end keeps its JSON by identity (``frontends/rest/records.py``).
    """

    model_config = ConfigDict(frozen=True)

    email: str
    domain: str
    display_name: str
    quota_bytes: int
    quota_bytes_used: int = Field(description="Bytes of mail stored now (read-only).")
    enabled: bool
    enable_imap: bool
    enable_pop: bool
    enable_smtp: bool
    global_admin: bool
    forward_enabled: bool
    forward_destinations: list[str]
    forward_keep: bool
    reply_enabled: bool
    reply_subject: str
    reply_body: str
    reply_start: date | None
    reply_end: date | None
    spam_enabled: bool
    spam_mark_as_read: bool
    spam_threshold: float
    change_pw_next_login: bool
    allow_spoofing: bool
    created_at: datetime
    updated_at: datetime
    auth_source: Literal["local", "ldap"] = Field(
        default="local",
        description="Where the password is checked: local (stored here) or ldap (the LDAP directory; "
        "mailroom never stores it and refuses to set it). Read-only.",
    )
