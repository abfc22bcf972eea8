"""Look-ups recipient resolution makes at RCPT time: every one a primary-key or index read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from mailroom.domain.usernames import canonical
from mailroom.store import domains
from mailroom.store.client_schema import usernames
from mailroom.store.engine import Query, Row, Tx
from mailroom.store.schema import aliases, alternatives, relays, users

_ALTERNATIVE = Query(select(alternatives.c.domain).where(alternatives.c.name == bindparam("name")))
_RELAY = Query(select(relays.c.name, relays.c.smarthost).where(relays.c.name == bindparam("name")))
_MAILBOX_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.enabled,
    users.c.forward_enabled,
    users.c.forward_destinations,
    users.c.forward_keep,
    users.c.quota_bytes,
    users.c.quota_bytes_used,
)
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


_MAILBOXES_COLUMNS = [
    users.c.id,
    users.c.email,
    users.c.display_name,
    users.c.enabled,
    users.c.quota_bytes,
    users.c.quota_bytes_used,
    users.c.spam_enabled,
    users.c.spam_mark_as_read,
    users.c.spam_threshold,
    users.c.reply_enabled,
    users.c.reply_subject,
    users.c.reply_body,
    users.c.reply_start,
    users.c.reply_end,
]


_MAILBOX = Query(select(*_MAILBOXES_COLUMNS).where(users.c.id == bindparam("id")))


async def mailboxes(tx: Tx, user_ids: list[int]) -> dict[int, Row]:
    """What delivery needs of each mailbox (quota, spam and auto-reply settings), by id."""
    out: dict[int, Row] = {}
    for user_id in user_ids:
        row = await tx.first(_MAILBOX, {"id": user_id})
        if row is not None:
            out[user_id] = row
    return out


async def user_by_email(tx: Tx, email: str) -> Row | None:
    """A mailbox by address (imports name their user this way)."""
    return await tx.first(select(*_MAILBOXES_COLUMNS).where(users.c.email == email))


async def domain_kind(tx: Tx, name: str) -> str | None:
    """``domain``, ``alternative``, ``relay`` or None for a name that is not ours."""
    return await domains.name_kind(tx, name)


async def primary_of(tx: Tx, alternative: str) -> str | None:
    domain: str | None = await tx.scalar(_ALTERNATIVE, {"name": alternative})
    return domain


async def relay(tx: Tx, name: str) -> Row | None:
    return await tx.first(_RELAY, {"name": name})


async def user(tx: Tx, email: str) -> Row | None:
    """The mailbox with this address, or the signed-up account whose name folds to it."""
    row = await tx.first(_USER, {"email": email})
    if row is None:
        local, _, domain = email.rpartition("@")
        row = await tx.first(_SIGNED_UP, {"domain": domain, "canonical": canonical(local)})
    return row


async def alias(tx: Tx, address: str) -> Row | None:
    """The exact (not wildcard) alias for ``address``."""
    return await tx.first(_ALIAS, {"address": address})


async def wildcard_aliases(tx: Tx, domain: str) -> list[dict[str, Any]]:
    """Every wildcard alias of ``domain`` (a domain has few; matching happens in Python)."""
    return await tx.all(_WILDCARDS, {"domain": domain})
