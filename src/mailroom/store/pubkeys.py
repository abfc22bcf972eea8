"""Repository of the public key directory: OpenPGP keys, where they are listed, votes on them,
and the pending confirmations of keys uploaded for local addresses.

A key (``public_keys``) is listed for one or more addresses (``key_listings``), each listing
with its source: ``owner`` (the address's owner published or confirmed it), ``user`` (anyone
uploaded it for an external address) or ``fetched`` (from another key server). Keys come back
as :class:`StoredKey` records with their listings and vote counts; which of them a key server
may serve is the services' rule (services/mail/keyserver.py), not the store's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypedDict

from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, select, update

from mailroom.store.client_schema import key_confirmations, key_listings, key_votes, public_keys
from mailroom.store.engine import Query, Row, Tx
from mailroom.store.schema import domain_names, users

Source = Literal["owner", "user", "fetched"]


@dataclass(frozen=True, slots=True)
class Listing:
    """One address a key is listed for, and who vouched for that."""

    email: str
    source: Source
    user_id: int | None
    listed_at: datetime


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key of the directory with its listings and the users' votes on it."""

    fingerprint: str
    email: str
    armored: str
    algorithm: str
    user_ids: list[str]
    key_created_at: datetime
    expires_at: datetime | None
    published_at: datetime
    listings: tuple[Listing, ...]
    votes_authentic: int
    votes_not_authentic: int

    def listing(self, email: str) -> Listing | None:
        return next((entry for entry in self.listings if entry.email == email), None)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A pending upload for a local address (the token itself is never stored)."""

    fingerprint: str
    email: str
    user_id: int
    armored: str
    created_at: datetime
    expires_at: datetime


_BY_FINGERPRINT = Query(select(public_keys).where(public_keys.c.fingerprint == bindparam("fingerprint")))
_KEY_COLUMNS = [c for c in public_keys.c if c.name != "user_id"]


async def get(tx: Tx, fingerprint: str) -> Row | None:
    """One key by fingerprint (its armored text and facts), listed or not."""
    return await tx.first(_BY_FINGERPRINT, {"fingerprint": fingerprint})


async def _records(tx: Tx, rows: Sequence[Row]) -> list[StoredKey]:
    """Rows of ``public_keys`` as records, with their listings and vote counts (two queries)."""
    if not rows:
        return []
    fingerprints = [str(r["fingerprint"]) for r in rows]
    listed: dict[str, list[Listing]] = {f: [] for f in fingerprints}
    for row in await tx.all(
        select(key_listings)
        .where(key_listings.c.fingerprint.in_(fingerprints))
        .order_by(key_listings.c.listed_at, key_listings.c.email)
    ):
        listed[row["fingerprint"]].append(
            Listing(row["email"], row["source"], row["user_id"], row["listed_at"])
        )
    votes: dict[str, tuple[int, int]] = {}
    authentic = func.sum(case((key_votes.c.authentic.is_(True), 1), else_=0))
    not_authentic = func.sum(case((key_votes.c.authentic.is_(False), 1), else_=0))
    for row in await tx.all(
        select(key_votes.c.fingerprint, authentic.label("up"), not_authentic.label("down"))
        .where(key_votes.c.fingerprint.in_(fingerprints))
        .group_by(key_votes.c.fingerprint)
    ):
        votes[row["fingerprint"]] = (int(row["up"] or 0), int(row["down"] or 0))
    return [
        StoredKey(
            fingerprint=r["fingerprint"],
            email=r["email"],
            armored=r["armored"],
            algorithm=r["algorithm"],
            user_ids=list(r["user_ids"]),
            key_created_at=r["key_created_at"],
            expires_at=r["expires_at"],
            published_at=r["published_at"],
            listings=tuple(listed[r["fingerprint"]]),
            votes_authentic=votes.get(r["fingerprint"], (0, 0))[0],
            votes_not_authentic=votes.get(r["fingerprint"], (0, 0))[1],
        )
        for r in rows
    ]


async def key(tx: Tx, fingerprint: str) -> StoredKey | None:
    """A key with at least one listing (a key nobody lists is not in the directory)."""
    found = await _records(tx, [r for r in [await get(tx, fingerprint)] if r is not None])
    return found[0] if found and found[0].listings else None


async def listed_for(tx: Tx, email: str, now: datetime) -> list[StoredKey]:
    """The keys listed for an address that have not expired, newest first."""
    stmt = (
        select(*_KEY_COLUMNS)
        .join(key_listings, key_listings.c.fingerprint == public_keys.c.fingerprint)
        .where(
            key_listings.c.email == email,
            or_(public_keys.c.expires_at.is_(None), public_keys.c.expires_at > now),
        )
        .order_by(public_keys.c.published_at.desc(), public_keys.c.fingerprint)
    )
    return await _records(tx, await tx.all(stmt))


async def by_key_id(tx: Tx, key_id: str) -> list[StoredKey]:
    """Listed keys whose fingerprint ends with ``key_id`` (a long or short key id, upper hex)."""
    stmt = (
        select(*_KEY_COLUMNS)
        .where(
            public_keys.c.fingerprint.like(f"%{key_id}"),
            public_keys.c.fingerprint.in_(select(key_listings.c.fingerprint)),
        )
        .order_by(public_keys.c.published_at.desc(), public_keys.c.fingerprint)
        .limit(50)
    )
    return await _records(tx, await tx.all(stmt))


async def owned_by(tx: Tx, user_id: int) -> list[StoredKey]:
    """The keys a user published or confirmed for their address, newest first."""
    stmt = (
        select(*_KEY_COLUMNS)
        .where(
            public_keys.c.fingerprint.in_(
                select(key_listings.c.fingerprint).where(key_listings.c.user_id == user_id)
            )
        )
        .order_by(public_keys.c.published_at.desc(), public_keys.c.fingerprint)
    )
    return await _records(tx, await tx.all(stmt))


class NewPublicKey(TypedDict):
    """The ``public_keys`` columns of a key to store."""

    fingerprint: str
    user_id: int | None
    email: str
    armored: str
    algorithm: str
    user_ids: list[str]
    key_created_at: datetime
    expires_at: datetime | None
    published_at: datetime


async def add_key(tx: Tx, values: NewPublicKey) -> bool:
    """Store a key unless its fingerprint is stored already (then nothing changes): True when
    it was added."""
    if await get(tx, values["fingerprint"]) is not None:
        return False
    await tx.execute(insert(public_keys).values(**values))
    return True


async def replace_text(tx: Tx, fingerprint: str, armored: str, user_ids: list[str]) -> None:
    """Replace a stored key's armored text and user ids (a copy with more confirmed user ids)."""
    await tx.execute(
        update(public_keys)
        .where(public_keys.c.fingerprint == fingerprint)
        .values(armored=armored, user_ids=user_ids)
    )


async def list_key(
    tx: Tx, fingerprint: str, email: str, source: Source, user_id: int | None, now: datetime
) -> bool:
    """List a stored key for ``email``. An ``owner`` listing replaces any other listing of the
    key for that address; a ``user`` or ``fetched`` one never replaces an ``owner`` one.
    True when something changed."""
    current = await tx.first(
        select(key_listings.c.source).where(
            key_listings.c.fingerprint == fingerprint, key_listings.c.email == email
        )
    )
    if current is None:
        await tx.execute(
            insert(key_listings).values(
                fingerprint=fingerprint, email=email, source=source, user_id=user_id, listed_at=now
            )
        )
        return True
    if source != "owner" or current["source"] == "owner":
        return False
    await tx.execute(
        update(key_listings)
        .where(key_listings.c.fingerprint == fingerprint, key_listings.c.email == email)
        .values(source="owner", user_id=user_id, listed_at=now)
    )
    return True


async def unlist_owned(tx: Tx, fingerprint: str, user_id: int) -> bool:
    """Withdraw a user's own listings of a key; a key no longer listed anywhere is deleted
    (with its votes). False when the user had no listing of it."""
    removed = await tx.rowcount(
        delete(key_listings).where(
            key_listings.c.fingerprint == fingerprint, key_listings.c.user_id == user_id
        )
    )
    if removed == 0:
        return False
    left = await tx.scalar(select(func.count()).where(key_listings.c.fingerprint == fingerprint))
    if not left:
        await tx.execute(delete(public_keys).where(public_keys.c.fingerprint == fingerprint))
    return True


async def addresses_in_domain(tx: Tx, domain: str) -> list[str]:
    """The addresses of ``domain`` for which their owner published a key (WKD resolves its
    hashes over them)."""
    escaped = domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    stmt = (
        select(key_listings.c.email)
        .where(key_listings.c.email.like(f"%@{escaped}", escape="\\"), key_listings.c.source == "owner")
        .distinct()
    )
    return [str(v) for v in await tx.scalars(stmt)]


# -- who is local --------------------------------------------------------------------------

_DOMAIN_KIND = Query(select(domain_names.c.kind).where(domain_names.c.name == bindparam("name")))
_MAILBOX = Query(select(users.c.id).where(users.c.email == bindparam("email"), users.c.enabled.is_(True)))


async def is_our_domain(tx: Tx, domain: str) -> bool:
    """Whether ``domain`` is one of ours (a mail domain, an alternative or a relayed domain)."""
    return await tx.scalar(_DOMAIN_KIND, {"name": domain}) is not None


async def mailbox_of(tx: Tx, email: str) -> int | None:
    """The enabled user whose address ``email`` is, if any."""
    user_id: int | None = await tx.scalar(_MAILBOX, {"email": email})
    return user_id


# -- confirmations -------------------------------------------------------------------------


def _confirmation(row: Row) -> Confirmation:
    return Confirmation(
        fingerprint=row["fingerprint"],
        email=row["email"],
        user_id=row["user_id"],
        armored=row["armored"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )


async def add_confirmation(tx: Tx, token_digest: str, pending: Confirmation) -> None:
    await tx.execute(
        insert(key_confirmations).values(
            token_digest=token_digest,
            fingerprint=pending.fingerprint,
            email=pending.email,
            user_id=pending.user_id,
            armored=pending.armored,
            created_at=pending.created_at,
            expires_at=pending.expires_at,
        )
    )


async def live_confirmations(tx: Tx, email: str, now: datetime, fingerprint: str | None = None) -> int:
    """How many links mailed to ``email`` (for ``fingerprint``, when given) are still usable."""
    stmt = select(func.count()).where(
        key_confirmations.c.email == email,
        key_confirmations.c.used_at.is_(None),
        key_confirmations.c.expires_at > now,
    )
    if fingerprint is not None:
        stmt = stmt.where(key_confirmations.c.fingerprint == fingerprint)
    return int(await tx.scalar(stmt) or 0)


def _usable(token_digest: str, now: datetime) -> Any:
    return and_(
        key_confirmations.c.token_digest == token_digest,
        key_confirmations.c.used_at.is_(None),
        key_confirmations.c.expires_at > now,
    )


async def confirmation(tx: Tx, token_digest: str, now: datetime) -> Confirmation | None:
    """The pending upload of an unused, unexpired token (reading it spends nothing)."""
    row = await tx.first(select(key_confirmations).where(_usable(token_digest, now)))
    return None if row is None else _confirmation(row)


async def use_confirmation(tx: Tx, token_digest: str, now: datetime) -> Confirmation | None:
    """Spend a token: its pending upload, or None when it is unknown, used or expired. Two
    concurrent uses cannot both win (the update is conditional on ``used_at IS NULL``)."""
    spent = await tx.rowcount(update(key_confirmations).where(_usable(token_digest, now)).values(used_at=now))
    if spent != 1:
        return None
    row = await tx.first(select(key_confirmations).where(key_confirmations.c.token_digest == token_digest))
    return None if row is None else _confirmation(row)


async def purge_confirmations(tx: Tx, before: datetime) -> int:
    """Forget confirmations that expired before ``before``."""
    return await tx.rowcount(delete(key_confirmations).where(key_confirmations.c.expires_at < before))


# -- votes ---------------------------------------------------------------------------------


async def set_vote(tx: Tx, fingerprint: str, user_id: int, authentic: bool, now: datetime) -> None:
    """Record (or change) a user's vote on a key."""
    changed = await tx.rowcount(
        update(key_votes)
        .where(key_votes.c.fingerprint == fingerprint, key_votes.c.user_id == user_id)
        .values(authentic=authentic, voted_at=now)
    )
    if changed == 0:
        await tx.execute(
            insert(key_votes).values(
                fingerprint=fingerprint, user_id=user_id, authentic=authentic, voted_at=now
            )
        )


async def delete_vote(tx: Tx, fingerprint: str, user_id: int) -> bool:
    return (
        await tx.rowcount(
            delete(key_votes).where(key_votes.c.fingerprint == fingerprint, key_votes.c.user_id == user_id)
        )
        > 0
    )


async def vote_of(tx: Tx, fingerprint: str, user_id: int) -> bool | None:
    """A user's vote on a key (True: authentic), None when they have not voted."""
    value = await tx.scalar(
        select(key_votes.c.authentic).where(
            key_votes.c.fingerprint == fingerprint, key_votes.c.user_id == user_id
        )
    )
    return None if value is None else bool(value)
