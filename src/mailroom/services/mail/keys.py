"""mail.keys.*: the server's OpenPGP key directory, as signed-in users see it.

Users publish their own public keys (a key must name the user's address in a user id, or be
only that address, as ``gpg --quick-gen-key alice@example.org`` makes it, and must not have
expired). Any authenticated caller can look keys up by address (keys that have not expired,
owner-published first) or by fingerprint, and sees for each key where its listing came from
(``source``), the users' votes and whether the key server serves it; signed-in users vote on
the authenticity of user-sourced keys. The trust model is services/mail/_keytrust.py.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mailroom.domain.contacts import PublicKey
from mailroom.domain.names import EmailAddress
from mailroom.domain.pgp import ArmoredKey, Fingerprint, ParsedKey, parse_public_key, without_addresses
from mailroom.errors import Conflict, FieldError, InvalidParams, NotFound
from mailroom.registry import DELETE, GET, POST, PUT, Authenticated, Context, UserSelf
from mailroom.services.mail._api import api
from mailroom.services.mail._keyfetch import fetch_for
from mailroom.services.mail._keytrust import directory_entry, served_addresses, served_for_address
from mailroom.store import pubkeys as store
from mailroom.store.engine import Tx
from mailroom.store.pubkeys import StoredKey


def key_values(key: ParsedKey, *, email: str, user_id: int | None, now: datetime) -> store.NewPublicKey:
    """The ``public_keys`` columns of a parsed key."""
    return {
        "fingerprint": key.fingerprint,
        "user_id": user_id,
        "email": email,
        "armored": key.armored,
        "algorithm": key.algorithm,
        "user_ids": key.user_ids,
        "key_created_at": key.created_at,
        "expires_at": key.expires_at,
        "published_at": now,
    }


async def publishable(tx: Tx, key: ParsedKey, confirmed: set[str]) -> ParsedKey:
    """The key without the user ids naming an address of ours that is not in ``confirmed``:
    the directory never gives out a claim to one of our addresses its owner did not confirm."""
    unconfirmed = {
        e for e in key.emails if e not in confirmed and await store.is_our_domain(tx, e.rpartition("@")[2])
    }
    return without_addresses(key.armored, unconfirmed) if unconfirmed else key


def owner_addresses(stored: StoredKey | None) -> set[str]:
    return set() if stored is None else {e.email for e in stored.listings if e.source == "owner"}


async def store_key(
    tx: Tx, stored: StoredKey | None, key: ParsedKey, *, email: str, user_id: int | None, now: datetime
) -> None:
    """Store ``key`` (already :func:`publishable`), or, when a copy is stored, replace it if
    this one has more user ids (a user id confirmed since); else keep the stored copy."""
    if stored is None:
        await store.add_key(tx, key_values(key, email=email, user_id=user_id, now=now))
    elif set(key.user_ids) > set(stored.user_ids):
        await store.replace_text(tx, key.fingerprint, key.armored, key.user_ids)


@api.method("mail.keys.publish", http=POST("/me/keys", status=201), access=UserSelf())
async def publish_key(ctx: Context, public_key: ArmoredKey) -> PublicKey:
    """Publish a public key for the caller's address (one of its user ids must name it). A key
    already in the directory for other addresses is listed for the caller's too."""
    p = ctx.principal
    assert p.user_id is not None
    assert p.email is not None
    try:
        key = parse_public_key(public_key)
    except ValueError as exc:
        raise InvalidParams([FieldError("public_key", str(exc))]) from None
    now = ctx.rt.clock.now()
    if p.email not in key.emails:
        raise InvalidParams([FieldError("public_key", f"the key has no user id with your address {p.email}")])
    if key.expired(now):
        raise InvalidParams([FieldError("public_key", "the key has expired")])
    async with ctx.rt.db.write() as tx:
        stored = await store.key(tx, key.fingerprint)
        text = await publishable(tx, key, owner_addresses(stored) | {p.email})
        await store_key(tx, stored, text, email=p.email, user_id=p.user_id, now=now)
        if not await store.list_key(tx, key.fingerprint, p.email, "owner", p.user_id, now):
            raise Conflict(
                f"the key {key.fingerprint} is already in the directory", fingerprint=key.fingerprint
            )
        stored = await store.key(tx, key.fingerprint)
    assert stored is not None
    return directory_entry(stored, p.email, served=True)


@api.method("mail.keys.list", http=GET("/me/keys"), access=UserSelf())
async def list_keys(ctx: Context) -> list[PublicKey]:
    """The keys the caller has published or confirmed for their address, newest first."""
    p = ctx.principal
    assert p.user_id is not None
    async with ctx.rt.db.read() as tx:
        keys = await store.owned_by(tx, p.user_id)
    mine = [next((e.email for e in k.listings if e.user_id == p.user_id), k.email) for k in keys]
    return [directory_entry(k, email, served=True) for k, email in zip(keys, mine, strict=True)]


@api.method("mail.keys.delete", http=DELETE("/me/keys/{fingerprint}"), access=UserSelf())
async def delete_key(ctx: Context, fingerprint: Fingerprint) -> None:
    """Withdraw one of the caller's keys from the directory (listings others made for external
    addresses of the same key stay)."""
    assert ctx.principal.user_id is not None
    async with ctx.rt.db.write() as tx:
        if not await store.unlist_owned(tx, fingerprint, ctx.principal.user_id):
            raise NotFound.of("key", fingerprint)


async def _entries(ctx: Context, tx: Tx, keys: list[StoredKey], email: str | None) -> list[PublicKey]:
    user_id = ctx.principal.user_id
    now = ctx.rt.clock.now()
    served_here: set[str] = set()
    if email is not None:
        ours = await store.is_our_domain(tx, email.rpartition("@")[2])
        served_here = {k.fingerprint for k in served_for_address(email, keys, ours)}
    out: list[PublicKey] = []
    for key in keys:
        mine = None if user_id is None else await store.vote_of(tx, key.fingerprint, user_id)
        if email is not None:
            out.append(directory_entry(key, email, served=key.fingerprint in served_here, my_vote=mine))
        else:
            addresses = await served_addresses(tx, key, now)
            shown = addresses[0] if addresses else key.listings[0].email
            out.append(directory_entry(key, shown, served=bool(addresses), my_vote=mine))
    return out


_SOURCE_ORDER = {"owner": 0, "fetched": 1, "user": 1}


@api.method("mail.keys.lookup", http=GET("/keys"), access=Authenticated())
async def lookup_keys(
    ctx: Context, email: EmailAddress | None = None, fingerprint: Fingerprint | None = None
) -> list[PublicKey]:
    """Keys by ``email`` (those not expired: the owner's first, then the others by their votes)
    or by ``fingerprint``; give one of them. Each says where it came from (``source``), its
    votes, the caller's vote and whether the key server serves it (``served``). With
    ``keyserver_upstream`` set, an external address without keys here is asked of that key
    server first (listed as ``fetched``)."""
    if (email is None) == (fingerprint is None):
        raise InvalidParams([FieldError("email", "give either email or fingerprint")])
    if email is not None and ctx.rt.settings.keyserver_upstream:
        async with ctx.rt.db.read() as tx:
            known = await store.listed_for(tx, email, ctx.rt.clock.now())
            ours = await store.is_our_domain(tx, email.rpartition("@")[2])
        if not known and not ours:
            await fetch_for(ctx, email)  # an external address nobody uploaded a key for yet
    async with ctx.rt.db.read() as tx:
        if email is not None:
            keys = await store.listed_for(tx, email, ctx.rt.clock.now())

            def rank(k: StoredKey) -> tuple[int, int]:
                entry = k.listing(email)
                source = entry.source if entry is not None else "user"
                return (_SOURCE_ORDER[source], k.votes_not_authentic - k.votes_authentic)

            keys.sort(key=rank)
        else:
            assert fingerprint is not None
            found = await store.key(tx, fingerprint)
            keys = [] if found is None else [found]
        return await _entries(ctx, tx, keys, email)


class Vote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    authentic: bool = Field(description="True: the key belongs to its addresses; false: it does not.")


@api.method("mail.keys.vote", http=PUT("/keys/{fingerprint}/vote"), access=UserSelf())
async def vote(ctx: Context, fingerprint: Fingerprint, vote: Vote) -> PublicKey:
    """Vote on whether a user-sourced key is authentic (voting again changes the vote). Keys
    only their owners published take no votes (``409``)."""
    user_id = ctx.principal.user_id
    assert user_id is not None
    async with ctx.rt.db.write() as tx:
        key = await store.key(tx, fingerprint)
        if key is None:
            raise NotFound.of("key", fingerprint)
        if all(entry.source == "owner" for entry in key.listings):
            raise Conflict("the key was published by its owner: only user-sourced keys take votes")
        await store.set_vote(tx, fingerprint, user_id, vote.authentic, ctx.rt.clock.now())
        updated = await store.key(tx, fingerprint)
        assert updated is not None
        return (await _entries(ctx, tx, [updated], None))[0]


@api.method("mail.keys.unvote", http=DELETE("/keys/{fingerprint}/vote"), access=UserSelf())
async def unvote(ctx: Context, fingerprint: Fingerprint) -> None:
    """Withdraw the caller's vote on a key."""
    user_id = ctx.principal.user_id
    assert user_id is not None
    async with ctx.rt.db.write() as tx:
        if not await store.delete_vote(tx, fingerprint, user_id):
            raise NotFound.of("vote on key", fingerprint)
