"""A domain's DKIM key, kept in the ``domains`` row.

The private key has its own reader, :func:`private_key`, for the outbound signer; nothing
that serves the API reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update

from mailroom.store.engine import Tx
from mailroom.store.schema import domains


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A domain's DKIM selector and public key (base64 DER, as published in DNS)."""

    selector: str
    public_key: str


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A domain's DKIM selector and private key (PEM). Secret: kept out of ``repr``."""

    selector: str
    private_key: str = field(repr=False)


async def public_key(tx: Tx, domain: str) -> PublicKey | None:
    """The domain's public key, or None when it has none."""
    row = await tx.first(
        select(
            domains.c.dkim_selector.label("selector"), domains.c.dkim_public_key.label("public_key")
        ).where(domains.c.name == domain, domains.c.dkim_selector.is_not(None))
    )
    return PublicKey(row["selector"], row["public_key"]) if row is not None else None


async def private_key(tx: Tx, domain: str) -> SigningKey | None:
    """The key for signing mail from ``domain``; None without a key.

    Secret: for the signer only, never for an API response.
    """
    row = await tx.first(
        select(
            domains.c.dkim_selector.label("selector"), domains.c.dkim_private_key.label("private_key")
        ).where(domains.c.name == domain, domains.c.dkim_selector.is_not(None))
    )
    return SigningKey(row["selector"], row["private_key"] or "") if row is not None else None


async def set_key(
    tx: Tx, domain: str, *, selector: str, private_pem: str, public_b64: str, when: datetime
) -> None:
    """Store (or replace) the domain's key pair."""
    await tx.execute(
        update(domains)
        .where(domains.c.name == domain)
        .values(
            dkim_selector=selector, dkim_private_key=private_pem, dkim_public_key=public_b64, updated_at=when
        )
    )


async def clear(tx: Tx, domain: str, *, when: datetime) -> bool:
    """Forget the domain's key pair; False when it had none."""
    gone = await tx.rowcount(
        update(domains)
        .where(domains.c.name == domain, domains.c.dkim_selector.is_not(None))
        .values(dkim_selector=None, dkim_private_key=None, dkim_public_key=None, updated_at=when)
    )
    return gone > 0
