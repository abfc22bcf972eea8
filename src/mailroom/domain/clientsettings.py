"""The mail client's settings: one typed, documented set per user.

``display_name``, ``reply``, ``forward`` and ``spam`` are the user's own mailbox fields, the
same ones the admin API shows (``reply.subject`` is ``reply_subject`` there); the rest are
client preferences kept beside them. Unknown keys and wrong types are refused: no string
for a number, no number for a string, no null where a value is needed.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationInfo, field_validator

from mailroom.domain.patches import drop_null
from mailroom.domain.users import (
    DEFAULT_SPAM_THRESHOLD,
    DisplayName,
    ForwardDestinations,
    ReplyBody,
    ReplySubject,
    SpamThreshold,
)

_LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$")
#: The rule ``_language`` applies, published.
_LANGUAGE_SCHEMA = {"pattern": _LANGUAGE.pattern}

StrictBool = Annotated[bool, Strict()]


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(value: str) -> str:
    if value != "UTC" and value not in _zones():
        raise ValueError("not an IANA time zone name such as Europe/Berlin")
    return value


def _language(value: str) -> str:
    if not _LANGUAGE.match(value):
        raise ValueError("not a language tag such as en or pt-BR")
    return value


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReplySettings(_Settings):
    """The auto-reply (vacation message): the admin API's ``reply_*`` fields."""

    enabled: StrictBool = False
    subject: Annotated[ReplySubject, Strict()] = ""
    body: Annotated[ReplyBody, Strict()] = ""
    start: date | None = Field(default=None, description="First day; null: from now.")
    end: date | None = Field(default=None, description="Last day; null: open-ended.")


class ForwardSettings(_Settings):
    """Forwarding of incoming mail: the admin API's ``forward_*`` fields."""

    enabled: StrictBool = False
    destinations: ForwardDestinations = Field(default_factory=list)
    keep: StrictBool = Field(default=True, description="Keep a copy in the mailbox.")


class SpamSettings(_Settings):
    """Spam filtering: the admin API's ``spam_*`` fields."""

    enabled: StrictBool = True
    threshold: Annotated[SpamThreshold, Strict()] = DEFAULT_SPAM_THRESHOLD
    mark_as_read: StrictBool = Field(default=False, description="Mark mail filed as spam as read.")


class NotificationSettings(_Settings):
    """What the client tells the user about."""

    new_mail: StrictBool = Field(default=True, description="Notify of new mail.")
    sound: StrictBool = Field(default=False, description="Play a sound with a notification.")
    desktop: StrictBool = Field(default=True, description="Show system (desktop or push) notifications.")


#: What a POP3 client's DELE does at QUIT (docs/pop3.md): ``archive`` takes the message out
#: of the INBOX into the archive (nothing is lost; the default), ``trash`` moves it to the
#: trash, ``delete`` destroys it for good.
Pop3Deletion = Literal["archive", "trash", "delete"]


class Pop3Settings(_Settings):
    """How POP3 clients act on this mailbox."""

    deletion: Pop3Deletion = Field(
        default="archive",
        description="What a message a POP3 client deletes becomes: archive (out of the inbox, kept), "
        "trash, or delete (gone for good).",
    )


class ClientSettings(_Settings):
    """Every setting of the mail client (``PUT`` replaces them all: absent fields get defaults)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "display_name": "John Smith",
                    "signature": "-- \nJohn",
                    "language": "en",
                    "timezone": "Europe/Berlin",
                    "page_size": 50,
                    "theme": "dark",
                }
            ]
        },
    )

    display_name: Annotated[DisplayName, Strict()] = ""
    signature: Annotated[str, Strict(), Field(max_length=10_000, description="Appended to written mail.")] = (
        ""
    )
    language: Annotated[
        str,
        Strict(),
        Field(
            max_length=35, description="BCP 47 language tag (en, pt-BR).", json_schema_extra=_LANGUAGE_SCHEMA
        ),
        AfterValidator(_language),
    ] = "en"
    timezone: Annotated[
        str,
        Strict(),
        Field(max_length=64, description="IANA time zone (Europe/Berlin)."),
        AfterValidator(_timezone),
    ] = "UTC"
    page_size: Annotated[int, Strict(), Field(ge=10, le=200, description="Conversations per page.")] = 50
    reply: ReplySettings = Field(default_factory=ReplySettings)
    forward: ForwardSettings = Field(default_factory=ForwardSettings)
    spam: SpamSettings = Field(default_factory=SpamSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    theme: Literal["system", "light", "dark"] = "system"
    pop3: Pop3Settings = Field(default_factory=Pop3Settings)


#: Client preferences stored in the settings table (the rest are mailbox fields).
PREFERENCES = ("signature", "language", "timezone", "page_size", "notifications", "theme", "pop3")


def mailbox_fields(settings: ClientSettings) -> dict[str, Any]:
    """The admin API's user fields these settings set."""
    r, f, s = settings.reply, settings.forward, settings.spam
    return {
        "display_name": settings.display_name,
        "reply_enabled": r.enabled,
        "reply_subject": r.subject,
        "reply_body": r.body,
        "reply_start": r.start,
        "reply_end": r.end,
        "forward_enabled": f.enabled,
        "forward_destinations": f.destinations,
        "forward_keep": f.keep,
        "spam_enabled": s.enabled,
        "spam_threshold": s.threshold,
        "spam_mark_as_read": s.mark_as_read,
    }


class MailboxSettings(Protocol):
    """The settings a stored mailbox carries (``store.users.UserRecord`` has them)."""

    @property
    def display_name(self) -> str: ...
    @property
    def reply_enabled(self) -> bool: ...
    @property
    def reply_subject(self) -> str: ...
    @property
    def reply_body(self) -> str: ...
    @property
    def reply_start(self) -> date | None: ...
    @property
    def reply_end(self) -> date | None: ...
    @property
    def forward_enabled(self) -> bool: ...
    @property
    def forward_destinations(self) -> list[str]: ...
    @property
    def forward_keep(self) -> bool: ...
    @property
    def spam_enabled(self) -> bool: ...
    @property
    def spam_threshold(self) -> float: ...
    @property
    def spam_mark_as_read(self) -> bool: ...


def from_mailbox(user: MailboxSettings, preferences: dict[str, Any]) -> ClientSettings:
    """Settings from a stored mailbox and the stored preferences."""
    return ClientSettings.model_validate(
        {
            **preferences,
            "display_name": user.display_name,
            "reply": {
                "enabled": user.reply_enabled,
                "subject": user.reply_subject,
                "body": user.reply_body,
                "start": user.reply_start,
                "end": user.reply_end,
            },
            "forward": {
                "enabled": user.forward_enabled,
                "destinations": user.forward_destinations,
                "keep": user.forward_keep,
            },
            "spam": {
                "enabled": user.spam_enabled,
                "threshold": user.spam_threshold,
                "mark_as_read": user.spam_mark_as_read,
            },
        }
    )


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge of ``patch`` into ``base``: objects merge key by key, other values replace."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _patch_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A patch publishes null only for the fields that accept it (``_nullable``)."""
    nullable: frozenset[str] = getattr(model, "_nullable", frozenset())
    drop_null(schema, [n for n in model.model_fields if n not in nullable])


class _Patch(BaseModel):
    """Absent fields stay as they are; null is refused except where a value may be null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)
    _nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name not in cls._nullable:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


class ReplyPatch(_Patch):
    _nullable = frozenset({"start", "end"})

    enabled: StrictBool | None = None
    subject: Annotated[ReplySubject, Strict()] | None = None
    body: Annotated[ReplyBody, Strict()] | None = None
    start: date | None = None
    end: date | None = None


class ForwardPatch(_Patch):
    enabled: StrictBool | None = None
    destinations: ForwardDestinations | None = None
    keep: StrictBool | None = None


class SpamPatch(_Patch):
    enabled: StrictBool | None = None
    threshold: Annotated[SpamThreshold, Strict()] | None = None
    mark_as_read: StrictBool | None = None


class Pop3Patch(_Patch):
    deletion: Pop3Deletion | None = None


class NotificationPatch(_Patch):
    new_mail: StrictBool | None = None
    sound: StrictBool | None = None
    desktop: StrictBool | None = None


def _settings_patch_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    _patch_schema(schema, model)
    schema["examples"] = [{"theme": "dark", "reply": {"enabled": True}}]


class SettingsPatch(_Patch):
    """Settings to change (``PATCH``): objects merge key by key, absent fields stay."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_settings_patch_schema)

    display_name: Annotated[DisplayName, Strict()] | None = None
    signature: Annotated[str, Strict(), Field(max_length=10_000)] | None = None
    language: (
        Annotated[
            str, Strict(), Field(max_length=35, json_schema_extra=_LANGUAGE_SCHEMA), AfterValidator(_language)
        ]
        | None
    ) = None
    timezone: Annotated[str, Strict(), Field(max_length=64), AfterValidator(_timezone)] | None = None
    page_size: Annotated[int, Strict(), Field(ge=10, le=200)] | None = None
    reply: ReplyPatch | None = None
    forward: ForwardPatch | None = None
    spam: SpamPatch | None = None
    notifications: NotificationPatch | None = None
    theme: Literal["system", "light", "dark"] | None = None
    pop3: Pop3Patch | None = None
