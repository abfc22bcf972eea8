"""Look-ups recipient resolution makes at RCPT time: every one a primary-key or index read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, select

from mailroom.domain.usernames import canonical
from mailroom.store import domains
from mailroom.store.client_schema import usernames
from mailroom.store.engine import Query, Tx
from mailroom.store.schema import aliases, alternatives, relays, users


@dataclass(frozen=True, slots=True)
class RecipientUser:
    """What resolving an address to a mailbox needs: whether it takes mail, and its forwarding."""

    id: int
    email: str
    enabled: bool
    forward_enabled: bool
    forward_destinations: list[str]
    forward_keep: bool
    quota_bytes: int
    quota_bytes_used: int


@dataclass(frozen=True, slots=True)
class Mailbox:
    """What delivery needs of a mailbox: quota, spam and auto-reply settings."""

    id: int
    email: str
    display_name: str
    enabled: bool
    quota_bytes: int
    quota_bytes_used: int
    spam_enabled: bool
    spam_mark_as_read: bool
    spam_threshold: float
    reply_enabled: bool
    reply_subject: str
    reply_body: str
    reply_start: date | None
    reply_end: date | None


@dataclass(frozen=True, slots=True)
class AliasTarget:
    """An alias (or a wildcard alias's pattern) and where it delivers."""

    address: str
    destinations: list[str]


@dataclass(frozen=True, slots=True)
class RelayRoute:
    """A relayed domain and the smarthost its mail goes to ("" for MX)."""

    name: str
    smarthost: str


_ALTERNATIVE = Query(select(alternatives.c.domain).where(alternatives.c.name == bindparam("name")))
_RELAY = Query(select(relays.c.name, relays.c.smarthost).where(relays.c.name == bindparam("name")))
_MAILBOX_COLUMNS = [users.c[name] for name in RecipientUser.__dataclass_fields__]
_USER = Query(select(*_MAILBOX_COLUMNS).where(users.c.email == bindparam("email")))
#: A signed-up name in any spelling: john.smith, johnsmith and John.Smith are one account.
_SIGNED_UP = Query(
    select(*_MAILBOX_COLUMNS)
    .select_from(usernames.join(users, users.c.id == usernames.c.user_id))
    .where(usernames.c.domain == bindparam("domain"), usernames.c.canonical == bindparam("canonical"))
)
_ALIAS = Query(
    select(aliases.c.address, aliases.c.destinations).where(
        aliases.c.address == bindparam("address"), aliases.c.wildcard.is_(False)
    )
)
_WILDCARDS = Query(
    select(aliases.c.address, aliases.c.destinations).where(
        aliases.c.domain == bindparam("domain"), aliases.c.wildcard.is_(True)
    )
)


_MAILBOXES_COLUMNS = [users.c[name] for name in Mailbox.__dataclass_fields__]


_MAILBOX = Query(select(*_MAILBOXES_COLUMNS).where(users.c.id == bindparam("id")))


async def mailboxes(tx: Tx, user_ids: list[int]) -> dict[int, Mailbox]:
    """What delivery needs of each mailbox (quota, spam and auto-reply settings), by id."""
    out: dict[int, Mailbox] = {}
    for user_id in user_ids:
        row = await tx.first(_MAILBOX, {"id": user_id})
        if row is not None:
            out[user_id] = Mailbox(**row)
    return out


async def user_by_email(tx: Tx, email: str) -> Mailbox | None:
    """A mailbox by address (imports name their user this way)."""
    row = await tx.first(select(*_MAILBOXES_COLUMNS).where(users.c.email == email))
    return Mailbox(**row) if row is not None else None


async def domain_kind(tx: Tx, name: str) -> str | None:
    """``domain``, ``alternative``, ``relay`` or None for a name that is not ours."""
    return await domains.name_kind(tx, name)


async def primary_of(tx: Tx, alternative: str) -> str | None:
    domain: str | None = await tx.scalar(_ALTERNATIVE, {"name": alternative})
    return domain


async def relay(tx: Tx, name: str) -> RelayRoute | None:
    """The relayed domain ``name``, or None."""
    row = await tx.first(_RELAY, {"name": name})
    return RelayRoute(**row) if row is not None else None


async def user(tx: Tx, email: str) -> RecipientUser | None:
    """The mailbox with this address, or the signed-up account whose name folds to it."""
    row = await tx.first(_USER, {"email": email})
    if row is None:
        local, _, domain = email.rpartition("@")
        row = await tx.first(_SIGNED_UP, {"domain": domain, "canonical": canonical(local)})
    return RecipientUser(**row) if row is not None else None


async def alias(tx: Tx, address: str) -> AliasTarget | None:
    """The exact (not wildcard) alias for ``address``."""
    row = await tx.first(_ALIAS, {"address": address})
    return AliasTarget(**row) if row is not None else None


async def wildcard_aliases(tx: Tx, domain: str) -> list[AliasTarget]:
    """Every wildcard alias of ``domain`` (a domain has few; matching happens in Python)."""
    return [AliasTarget(**row) for row in await tx.all(_WILDCARDS, {"domain": domain})]
