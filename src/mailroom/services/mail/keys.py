"""mail.keys.*: the server's OpenPGP key directory.

Users publish their own public keys; a key must name the user's address in a user id and
must not have expired. Any authenticated caller can look keys up by address (keys that have
not expired, newest first) or by fingerprint.
"""

from __future__ import annotations

from mailroom.domain.contacts import PublicKey
from mailroom.domain.names import EmailAddress
from mailroom.domain.pgp import ArmoredKey, Fingerprint, parse_public_key
from mailroom.errors import Conflict, FieldError, InvalidParams, NotFound
from mailroom.registry import DELETE, GET, POST, Authenticated, Context, UserSelf
from mailroom.services.mail._api import api
from mailroom.store import pubkeys as store


@api.method("mail.keys.publish", http=POST("/me/keys", status=201), access=UserSelf())
async def publish_key(ctx: Context, public_key: ArmoredKey) -> PublicKey:
    """Publish a public key for the caller's address (one of its user ids must name it)."""
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
        if await store.get(tx, key.fingerprint) is not None:
            raise Conflict(
                f"the key {key.fingerprint} is already in the directory", fingerprint=key.fingerprint
            )
        await store.insert_key(
            tx,
            {
                "fingerprint": key.fingerprint,
                "user_id": p.user_id,
                "email": p.email,
                "armored": key.armored,
                "algorithm": key.algorithm,
                "user_ids": key.user_ids,
                "key_created_at": key.created_at,
                "expires_at": key.expires_at,
                "published_at": now,
            },
        )
        row = await store.get(tx, key.fingerprint)
    assert row is not None
    return PublicKey.model_validate(row)


@api.method("mail.keys.list", http=GET("/me/keys"), access=UserSelf())
async def list_keys(ctx: Context) -> list[PublicKey]:
    """The keys the caller has published, newest first."""
    assert ctx.principal.user_id is not None
    async with ctx.rt.db.read() as tx:
        rows = await store.of_user(tx, ctx.principal.user_id)
    return [PublicKey.model_validate(r) for r in rows]


@api.method("mail.keys.delete", http=DELETE("/me/keys/{fingerprint}"), access=UserSelf())
async def delete_key(ctx: Context, fingerprint: Fingerprint) -> None:
    """Withdraw one of the caller's keys from the directory."""
    assert ctx.principal.user_id is not None
    async with ctx.rt.db.write() as tx:
        if not await store.delete_key(tx, fingerprint, ctx.principal.user_id):
            raise NotFound.of("key", fingerprint)


@api.method("mail.keys.lookup", http=GET("/keys"), access=Authenticated())
async def lookup_keys(
    ctx: Context, email: EmailAddress | None = None, fingerprint: Fingerprint | None = None
) -> list[PublicKey]:
    """Keys by ``email`` (those not expired, newest first) or by ``fingerprint``; give one of them."""
    if (email is None) == (fingerprint is None):
        raise InvalidParams([FieldError("email", "give either email or fingerprint")])
    async with ctx.rt.db.read() as tx:
        if email is not None:
            rows = await store.by_email(tx, email, ctx.rt.clock.now())
        else:
            assert fingerprint is not None
            row = await store.get(tx, fingerprint)
            rows = [] if row is None else [row]
    return [PublicKey.model_validate(r) for r in rows]
