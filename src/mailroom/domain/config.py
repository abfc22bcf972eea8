"""The configuration document: every domain, alternative, relay, user, alias and manager.

One model serves both directions. ``admin.config.export`` returns it; ``admin.config.import``
takes it. Entries reuse the field types of the per-object schemas (``domain.users``,
``domain.aliases``, ...), so a value the admin API refuses is refused here with the same
message.

Secrets appear only when asked for: ``password_hash`` with ``with_password_hashes`` and
``dkim_private_key`` with ``include_secrets``; both are left out of the output when absent.
``password`` is write-only: an import may carry a plain password to be hashed, an export
never has one. Timestamps and usage counters (``quota_bytes_used``) are state, not
configuration, and are not part of the document.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mailroom.domain.aliases import Comment, Destinations
from mailroom.domain.dkim import DkimSelector
from mailroom.domain.names import AliasAddress, DomainName, EmailAddress
from mailroom.domain.numbers import ByteSize, Count
from mailroom.domain.relays import Smarthost
from mailroom.domain.users import (
    DEFAULT_SPAM_THRESHOLD,
    DisplayName,
    ForwardDestinations,
    Password,
    QuotaBytes,
    ReplyBody,
    ReplySubject,
    SpamThreshold,
)

#: The document format; a later format gets a new number and a converter.
FORMAT_VERSION = 1

#: Kinds in the order they are created; deletions run in the reverse order.
Kind = Literal["domain", "relay", "alternative", "user", "alias", "manager"]
KINDS: tuple[Kind, ...] = ("domain", "relay", "alternative", "user", "alias", "manager")
Action = Literal["create", "update", "delete"]

#: What the diff shows instead of a secret value.
MASK = "********"


def _absent(value: object) -> bool:
    return value is None


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigDomain(_Entry):
    """A mail domain, its limits and, with ``include_secrets``, its DKIM private key."""

    name: DomainName
    comment: Comment = ""
    max_users: Count | None = Field(default=None, description="null: no limit.")
    max_aliases: Count | None = Field(default=None, description="null: no limit.")
    max_quota_bytes: ByteSize | None = Field(default=None, description="null: no limit.")
    signup_enabled: bool = False
    dkim_selector: DkimSelector | None = Field(
        default=None,
        description="Selector of the DKIM key; null: no key. On import a key is created only "
        "from dkim_private_key; null removes a key only with prune.",
    )
    dkim_private_key: str | None = Field(
        default=None,
        max_length=20_000,
        exclude_if=_absent,
        description="Secret: PEM RSA private key, exported only with include_secrets.",
    )


class ConfigAlternative(_Entry):
    """Another name of ``domain``."""

    name: DomainName
    domain: DomainName
    comment: Comment = ""


class ConfigRelay(_Entry):
    """A relayed domain."""

    name: DomainName
    smarthost: Smarthost = ""
    comment: Comment = ""


class ConfigUser(_Entry):
    """A mailbox. Give ``password`` (hashed on import) or ``password_hash`` (stored as given)."""

    email: EmailAddress
    display_name: DisplayName = ""
    quota_bytes: QuotaBytes | None = Field(
        default=None, description="null on a new user: the domain's max_quota_bytes, or 1 GiB."
    )
    enabled: bool = True
    enable_imap: bool = True
    enable_pop: bool = True
    enable_smtp: bool = True
    global_admin: bool = False
    forward_enabled: bool = False
    forward_destinations: ForwardDestinations = Field(default_factory=list)
    forward_keep: bool = True
    reply_enabled: bool = False
    reply_subject: ReplySubject = ""
    reply_body: ReplyBody = ""
    reply_start: date | None = None
    reply_end: date | None = None
    spam_enabled: bool = True
    spam_mark_as_read: bool = False
    spam_threshold: SpamThreshold = DEFAULT_SPAM_THRESHOLD
    change_pw_next_login: bool = False
    allow_spoofing: bool = False
    auth_source: Literal["local", "ldap"] = Field(
        default="local",
        description="ldap: the LDAP directory checks the password (none is stored; give neither "
        "password nor password_hash); local: the stored password (a new user needs one).",
    )
    password: Password | None = Field(default=None, exclude=True)
    password_hash: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        exclude_if=_absent,
        description="Secret: the stored hash (argon2id or an imported crypt format), "
        "exported only with with_password_hashes.",
    )


class ConfigAlias(_Entry):
    """An alias; ``*`` in the address needs ``wildcard: true``."""

    address: AliasAddress
    destinations: Destinations
    wildcard: bool = False
    comment: Comment = ""


class ConfigManager(_Entry):
    """``email`` (a user of any domain) manages ``domain``."""

    domain: DomainName
    email: EmailAddress


class ConfigDocument(_Entry):
    """The whole configuration, each list sorted by its key so that two exports diff cleanly."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "version": 1,
                    "domains": [{"name": "example.org", "max_users": 100}],
                    "users": [{"email": "alice@example.org", "password": "correct horse battery staple"}],
                    "aliases": [{"address": "info@example.org", "destinations": ["alice@example.org"]}],
                    "managers": [{"domain": "example.org", "email": "alice@example.org"}],
                }
            ]
        },
    )

    version: Literal[1] = 1
    domains: list[ConfigDomain] = Field(default_factory=list)
    alternatives: list[ConfigAlternative] = Field(default_factory=list)
    relays: list[ConfigRelay] = Field(default_factory=list)
    users: list[ConfigUser] = Field(default_factory=list)
    aliases: list[ConfigAlias] = Field(default_factory=list)
    managers: list[ConfigManager] = Field(default_factory=list)


class FieldChange(BaseModel):
    """One field's value before and after (secrets show as ``********``)."""

    old: Any = None
    new: Any = None


class ConfigChange(BaseModel):
    """One object an import creates, updates or deletes."""

    action: Action
    kind: Kind
    key: str = Field(description="The object's name or address; a manager is domain/email.")
    changes: dict[str, FieldChange] = Field(
        default_factory=dict,
        description="Changed fields (every field of a created object; none for a deletion).",
    )


class ConfigImportResult(BaseModel):
    """What an import did, or with ``dry_run`` would do, in the order it does it."""

    dry_run: bool
    changes: list[ConfigChange]
    created: int
    updated: int
    deleted: int
