"""The key directory's trust model: which listed keys HKP and WKD may give out.

For an address (docs/keyserver.md, "Trust model"):

1. keys its owner published or confirmed (``owner`` listings) win: when there is one, only
   those are served for the address;
2. an address of one of our domains never gets any other key (nobody but the mailbox's
   owner speaks for it);
3. otherwise (an external address) user-sourced and fetched keys are served unless more
   users voted them not authentic than authentic.

Web Key Directory serves rule 1 only: it is the domain's own, authoritative answer.
By fingerprint or key id a key is served when at least one of its listings is.
"""

from __future__ import annotations

from datetime import datetime

from mailroom.domain.contacts import PublicKey
from mailroom.store import pubkeys as store
from mailroom.store.engine import Tx
from mailroom.store.pubkeys import StoredKey


def _domain(email: str) -> str:
    return email.rpartition("@")[2]


def trusted_by_votes(key: StoredKey) -> bool:
    return key.votes_not_authentic <= key.votes_authentic


def served_for_address(email: str, keys: list[StoredKey], ours: bool) -> list[StoredKey]:
    """The keys HKP serves for ``email`` out of those listed for it (rules 1-3)."""
    owners = [k for k in keys if (entry := k.listing(email)) is not None and entry.source == "owner"]
    if owners or ours:
        return owners
    return [k for k in keys if trusted_by_votes(k)]


async def served_addresses(tx: Tx, key: StoredKey, now: datetime) -> list[str]:
    """The addresses for which ``key`` is served."""
    served: list[str] = []
    for entry in key.listings:
        if entry.source == "owner":
            served.append(entry.email)
            continue
        if not trusted_by_votes(key) or await store.is_our_domain(tx, _domain(entry.email)):
            continue
        others = await store.listed_for(tx, entry.email, now)
        if not any((o.listing(entry.email) or entry).source == "owner" for o in others):
            served.append(entry.email)
    return served


def directory_entry(key: StoredKey, email: str, *, served: bool, my_vote: bool | None = None) -> PublicKey:
    """A key as the client API's directory shows it for ``email``."""
    entry = key.listing(email) or (key.listings[0] if key.listings else None)
    return PublicKey(
        fingerprint=key.fingerprint,
        email=entry.email if entry is not None else key.email,
        algorithm=key.algorithm,
        user_ids=key.user_ids,
        key_created_at=key.key_created_at,
        expires_at=key.expires_at,
        published_at=key.published_at,
        armored=key.armored,
        source=entry.source if entry is not None else "owner",
        votes_authentic=key.votes_authentic,
        votes_not_authentic=key.votes_not_authentic,
        my_vote=my_vote,
        served=served,
    )
