"""mail.keyserver.*: the public face of the key directory, for HKP and WKD clients (gpg).

Public methods (no login: a key server answers anyone), read-only. The key directory holds
the keys owners published for their own address (mail.keys.publish, or an upload they
confirmed) and keys uploaded for external addresses (services/mail/keyupload.py); here the
ones the trust model serves (services/mail/_keytrust.py) are found by fingerprint, by long or
short key id, or by exact address, and for Web Key Directory by the z-base-32 SHA-1 hash of
the address's local part. Expired keys are not offered by address;
by fingerprint or key id they are (a client asking for one knows what it wants).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from mailroom.domain.names import DomainName, EmailAddress
from mailroom.domain.pgp import Fingerprint, key_facts
from mailroom.errors import FieldError, InvalidParams
from mailroom.registry import Context, Public
from mailroom.services.mail._api import api
from mailroom.services.mail._keytrust import served_addresses, served_for_address
from mailroom.store import pubkeys as store
from mailroom.store.engine import Tx
from mailroom.store.pubkeys import StoredKey

KeyId = Annotated[str, Field(pattern=r"^(?:0[xX])?(?:[0-9A-Fa-f]{8}|[0-9A-Fa-f]{16})$")]
WkdHash = Annotated[str, Field(pattern=r"^[ybndrfg8ejkmcpqxot1uwisza345h769]{32}$")]
LocalPart = Annotated[str, Field(min_length=1, max_length=64)]

_ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769"


def zbase32(data: bytes) -> str:
    """z-base-32 (the WKD hash alphabet): 5 bits a character, most significant first."""
    bits = int.from_bytes(data, "big")
    count = (len(data) * 8 + 4) // 5
    bits <<= count * 5 - len(data) * 8
    return "".join(_ZBASE32[(bits >> (5 * (count - 1 - i))) & 31] for i in range(count))


def wkd_hash(local_part: str) -> str:
    """The WKD name of a local part: z-base-32 of the SHA-1 of its lowercase form."""
    return zbase32(hashlib.sha1(local_part.lower().encode(), usedforsecurity=False).digest())


class DirectoryKey(BaseModel):
    """A key as a key server lists it."""

    fingerprint: str
    algorithm_id: int = Field(description="RFC 4880 public-key algorithm number.")
    bits: int
    user_ids: list[str]
    key_created_at: datetime
    expires_at: datetime | None
    armored: str


def _directory_key(key: StoredKey) -> DirectoryKey:
    facts = key_facts(key.armored)
    return DirectoryKey(
        fingerprint=key.fingerprint,
        algorithm_id=facts.algorithm_id,
        bits=facts.bits,
        user_ids=key.user_ids,
        key_created_at=key.key_created_at,
        expires_at=key.expires_at,
        armored=key.armored,
    )


async def _served(tx: Tx, keys: list[StoredKey], now: datetime) -> list[StoredKey]:
    return [k for k in keys if await served_addresses(tx, k, now)]


@api.method("mail.keyserver.search", access=Public())
async def search(
    ctx: Context,
    email: EmailAddress | None = None,
    fingerprint: Fingerprint | None = None,
    key_id: KeyId | None = None,
) -> list[DirectoryKey]:
    """Keys the trust model serves (docs/keyserver.md) by exact ``email`` (not expired, newest
    first), ``fingerprint`` or ``key_id`` (the last 16 or 8 hex digits of the fingerprint);
    give one of them."""
    if sum(v is not None for v in (email, fingerprint, key_id)) != 1:
        raise InvalidParams([FieldError("email", "give one of email, fingerprint or key_id")])
    now = ctx.rt.clock.now()
    async with ctx.rt.db.read() as tx:
        if email is not None:
            ours = await store.is_our_domain(tx, email.rpartition("@")[2])
            keys = served_for_address(email, await store.listed_for(tx, email, now), ours)
        elif fingerprint is not None:
            found = await store.key(tx, fingerprint)
            keys = await _served(tx, [] if found is None else [found], now)
        else:
            assert key_id is not None
            keys = await _served(tx, await store.by_key_id(tx, key_id.upper().removeprefix("0X")), now)
    return [_directory_key(k) for k in keys]


@api.method("mail.keyserver.wkd", access=Public())
async def wkd(
    ctx: Context, domain: DomainName, local_hash: WkdHash, local_part: LocalPart | None = None
) -> list[DirectoryKey]:
    """The keys Web Key Directory serves for ``local_hash`` in ``domain``: those the addresses'
    owners published (the ``l`` parameter, when given, names the local part; it must hash to
    ``local_hash``)."""
    async with ctx.rt.db.read() as tx:
        if local_part is not None:
            if wkd_hash(local_part) != local_hash:
                return []
            candidates = [f"{local_part.lower()}@{domain}"]
        else:
            candidates = [
                a
                for a in await store.addresses_in_domain(tx, domain)
                if wkd_hash(a.rpartition("@")[0]) == local_hash
            ]
        now = ctx.rt.clock.now()
        keys = [
            k
            for address in candidates
            for k in await store.listed_for(tx, address, now)
            if (entry := k.listing(address)) is not None and entry.source == "owner"
        ]
    return [_directory_key(k) for k in keys]
