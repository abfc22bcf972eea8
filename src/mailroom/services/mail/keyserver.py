"""mail.keyserver.*: the public face of the key directory, for HKP and WKD clients (gpg).

Public methods (no login: a key server answers anyone), read-only. The key directory holds
the keys users published for their own address (mail.keys.publish); here they are found by
fingerprint, by long or short key id, or by exact address, and for Web Key Directory by the
z-base-32 SHA-1 hash of the address's local part. Expired keys are not offered by address;
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
from mailroom.store import pubkeys as store
from mailroom.store.engine import Row

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


def _directory_key(row: Row) -> DirectoryKey:
    facts = key_facts(str(row["armored"]))
    return DirectoryKey(
        fingerprint=row["fingerprint"],
        algorithm_id=facts.algorithm_id,
        bits=facts.bits,
        user_ids=list(row["user_ids"]),
        key_created_at=row["key_created_at"],
        expires_at=row["expires_at"],
        armored=row["armored"],
    )


@api.method("mail.keyserver.search", access=Public())
async def search(
    ctx: Context,
    email: EmailAddress | None = None,
    fingerprint: Fingerprint | None = None,
    key_id: KeyId | None = None,
) -> list[DirectoryKey]:
    """Published keys by exact ``email`` (not expired, newest first), ``fingerprint`` or
    ``key_id`` (the last 16 or 8 hex digits of the fingerprint); give one of them."""
    if sum(v is not None for v in (email, fingerprint, key_id)) != 1:
        raise InvalidParams([FieldError("email", "give one of email, fingerprint or key_id")])
    async with ctx.rt.db.read() as tx:
        if email is not None:
            rows = await store.by_email(tx, email, ctx.rt.clock.now())
        elif fingerprint is not None:
            row = await store.get(tx, fingerprint)
            rows = [] if row is None else [row]
        else:
            assert key_id is not None
            rows = await store.by_key_id(tx, key_id.upper().removeprefix("0X"))
    return [_directory_key(r) for r in rows]


@api.method("mail.keyserver.wkd", access=Public())
async def wkd(
    ctx: Context, domain: DomainName, local_hash: WkdHash, local_part: LocalPart | None = None
) -> list[DirectoryKey]:
    """The keys Web Key Directory serves for ``local_hash`` in ``domain`` (the ``l`` parameter, when
    given, names the local part; it must hash to ``local_hash``)."""
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
        rows = [row for address in candidates for row in await store.by_email(tx, address, now)]
    return [_directory_key(r) for r in rows]
