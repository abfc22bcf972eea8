"""mail.keyserver.add / confirmation / confirm: keys uploaded to the key server (HKP
``POST /pks/add``, what ``gpg --send-keys`` does), and the owners' confirmations.

An upload is one armored public key (secret keys, garbage and keys that expired are refused;
so is a key naming more than :data:`MAX_LOCAL_ADDRESSES` of our addresses). For each address
in its user ids:

- an address of one of our domains is published only once its owner confirms: a mail goes
  to the mailbox (through the same outbound path as every mail, so it is delivered locally)
  with a link carrying a single-use token, stored as its SHA-256 digest and valid
  ``keyserver_confirm_hours``. While a link for the same key and address is still valid no
  second one is sent, and an address gets at most :data:`MAX_LIVE_LINKS` live links at a
  time (nobody can flood a mailbox by uploading keys again and again). An
  address of ours without a mailbox gets nothing. The answer says "pending" for every
  address of ours alike, so uploads cannot tell which mailboxes exist;
- any other address lists the key at once as ``user``-sourced: served by the key server
  unless users vote it down (services/mail/_keytrust.py).

Opening the link (``GET /pks/confirm/<token>``, :func:`confirmation`) only shows what would
be published: link scanners and mail clients that prefetch links change nothing. The owner's
button posts it (:func:`confirm`), which spends the token and lists the key as ``owner``.

Uploads are limited per client network (``keyserver_upload_limit``, in the shared counters).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Annotated

from pydantic import BaseModel, Field

from mailroom.accounting.counters import client_network, parse_limit
from mailroom.accounting.sending import counters_of
from mailroom.auth import tokens
from mailroom.delivery.outbound import submit
from mailroom.domain.contacts import PublicKey
from mailroom.domain.pgp import MAX_KEY_CHARS, parse_public_key
from mailroom.errors import FieldError, InvalidParams, NotFound, RateLimited
from mailroom.registry import Context, Public
from mailroom.services.mail._api import api
from mailroom.services.mail._keytrust import directory_entry
from mailroom.services.mail.keys import owner_addresses, publishable, store_key
from mailroom.store import pubkeys as store
from mailroom.store.pubkeys import Confirmation

log = logging.getLogger("mailroom.keyserver")

#: Confirmation tokens: ``mkc_<lookup id>_<random>`` (redacted from logs like every secret).
TOKEN_PREFIX = "mkc"
#: A key naming more of our addresses than this is refused (one mail each).
MAX_LOCAL_ADDRESSES = 10
#: At most this many unused, unexpired links per address (different keys): more uploads for
#: the address mail nothing until one is used or expires.
MAX_LIVE_LINKS = 5
_UPLOAD_NAMESPACE = "keyupload"

KeyText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_KEY_CHARS,
        description="One ASCII-armored OpenPGP public key (HKP's keytext).",
    ),
]
ConfirmToken = Annotated[
    str, Field(min_length=1, max_length=300, description="The token of the mailed confirmation link.")
]


class Upload(BaseModel):
    """What became of an uploaded key."""

    fingerprint: str
    listed: list[str] = Field(description="External addresses the key is now listed for (user-sourced).")
    pending: list[str] = Field(
        description="Addresses of ours: published once their owner confirms the link mailed to them."
    )
    published: list[str] = Field(description="Addresses of ours its owner had already published it for.")


class PendingKey(BaseModel):
    """What a confirmation link would publish."""

    fingerprint: str
    email: str
    user_ids: list[str]
    expires_at: datetime = Field(description="When the link stops working.")


async def _check_upload_limit(ctx: Context) -> None:
    counters = counters_of(ctx.rt)
    settings = ctx.rt.settings
    ip = ctx.principal.client_ip or ctx.call.client_ip
    network = client_network(ip, settings.client_network_prefix_v4, settings.client_network_prefix_v6)
    if counters is None or network is None or ctx.call.protocol in ("inprocess", "cli"):
        return
    item = parse_limit(settings.keyserver_upload_limit)
    try:
        allowed = await counters.limiter.hit(item, _UPLOAD_NAMESPACE, network)
    except Exception:
        log.exception("key upload counters unavailable; upload allowed")
        return
    if not allowed:
        raise RateLimited(
            "too many key uploads from your network: try again later", retry_after=item.get_expiry()
        )


def _link(ctx: Context, token: str) -> str:
    settings = ctx.rt.settings
    base = (settings.public_url or f"https://{settings.hostname}").rstrip("/")
    return f"{base}/pks/confirm/{token}"


def _confirmation_mail(ctx: Context, pending: Confirmation, user_ids: list[str], link: str) -> bytes:
    domain = pending.email.rpartition("@")[2]
    fingerprint = " ".join(pending.fingerprint[i : i + 4] for i in range(0, len(pending.fingerprint), 4))
    msg = EmailMessage()
    msg["From"] = formataddr(("Key server", f"postmaster@{domain}"))
    msg["To"] = pending.email
    msg["Subject"] = f"Confirm your OpenPGP key for {pending.email}"
    msg["Auto-Submitted"] = "auto-generated"
    msg["Date"] = format_datetime(ctx.rt.clock.now())
    uids = "\n".join(f"    {uid}" for uid in user_ids)
    text = (
        f"Someone uploaded an OpenPGP key for {pending.email} to the key server of {domain}:\n\n"
        f"    Fingerprint: {fingerprint}\n\nUser ids:\n{uids}\n\n"
        "If this is your key and you want others to find it, open this link and press the "
        f"button (the link works once, until {pending.expires_at:%Y-%m-%d %H:%M} UTC):\n\n"
        f"    {link}\n\n"
        "If it is not your key, ignore this message: nothing is published for your address "
        "without your confirmation.\n"
    )
    # Not quoted-printable: the link stays whole on its line for every mail client.
    msg.set_content(text, cte="7bit" if text.isascii() else "8bit")
    return bytes(msg)


@api.method("mail.keyserver.add", access=Public(), mutating=True)
async def add(ctx: Context, keytext: KeyText) -> Upload:
    """Upload a public key (HKP ``POST /pks/add``): listed at once for external addresses
    (user-sourced), published for our addresses once their owner confirms the mailed link."""
    await _check_upload_limit(ctx)
    try:
        key = parse_public_key(keytext)
    except ValueError as exc:
        raise InvalidParams([FieldError("keytext", str(exc))]) from None
    now = ctx.rt.clock.now()
    if key.expired(now):
        raise InvalidParams([FieldError("keytext", "the key has expired")])
    if not key.emails:
        raise InvalidParams([FieldError("keytext", "no user id of the key has an address")])
    listed: list[str] = []
    pending: list[str] = []
    published: list[str] = []
    mails: list[tuple[Confirmation, str]] = []
    expires = now + timedelta(hours=ctx.rt.settings.keyserver_confirm_hours)
    async with ctx.rt.db.write() as tx:
        ours = {e: await store.is_our_domain(tx, e.rpartition("@")[2]) for e in key.emails}
        if sum(ours.values()) > MAX_LOCAL_ADDRESSES:
            raise InvalidParams(
                [
                    FieldError(
                        "keytext", f"the key names more than {MAX_LOCAL_ADDRESSES} addresses of this server"
                    )
                ]
            )
        stored = await store.key(tx, key.fingerprint)
        external = [e for e in key.emails if not ours[e]]
        if external:
            text = await publishable(tx, key, owner_addresses(stored))
            await store_key(tx, stored, text, email=external[0], user_id=None, now=now)
            for email in external:
                await store.list_key(tx, key.fingerprint, email, "user", None, now)
                listed.append(email)
        for email in (e for e in key.emails if ours[e]):
            entry = stored.listing(email) if stored is not None else None
            if entry is not None and entry.source == "owner":
                published.append(email)
                continue
            pending.append(email)
            owner = await store.mailbox_of(tx, email)
            if (
                owner is None
                or await store.live_confirmations(tx, email, now, key.fingerprint)
                or await store.live_confirmations(tx, email, now) >= MAX_LIVE_LINKS
            ):
                continue
            issued = tokens.new_secret(TOKEN_PREFIX)
            confirmation = Confirmation(key.fingerprint, email, owner, key.armored, now, expires)
            await store.add_confirmation(tx, issued.digest, confirmation)
            mails.append((confirmation, issued.secret))
    for confirmation, secret in mails:
        raw = _confirmation_mail(ctx, confirmation, key.user_ids, _link(ctx, secret))
        result = await submit(
            ctx.rt,
            raw,
            mail_from="",
            recipients=[confirmation.email],
            source="keyserver",
            sender_user_id=None,
        )
        if not result.accepted:
            log.warning("the key confirmation for %s could not be delivered", confirmation.email)
    return Upload(fingerprint=key.fingerprint, listed=listed, pending=pending, published=published)


@api.method("mail.keyserver.confirmation", access=Public())
async def confirmation(ctx: Context, token: ConfirmToken) -> PendingKey:
    """What a confirmation link would publish (changes nothing: prefetchers may open it)."""
    now = ctx.rt.clock.now()
    async with ctx.rt.db.read() as tx:
        found = await store.confirmation(tx, tokens.digest(token), now)
    if found is None:
        raise NotFound("this confirmation link is unknown, used or expired", kind="confirmation")
    facts = parse_public_key(found.armored)
    return PendingKey(
        fingerprint=found.fingerprint, email=found.email, user_ids=facts.user_ids, expires_at=found.expires_at
    )


@api.method("mail.keyserver.confirm", access=Public(), mutating=True)
async def confirm(ctx: Context, token: ConfirmToken) -> PublicKey:
    """Publish the key of a confirmation link for its address (spends the token)."""
    now = ctx.rt.clock.now()
    async with ctx.rt.db.write() as tx:
        found = await store.use_confirmation(tx, tokens.digest(token), now)
        if found is None or await store.mailbox_of(tx, found.email) != found.user_id:
            # Unknown, used, expired, or the mailbox changed hands or was disabled since.
            raise NotFound("this confirmation link is unknown, used or expired", kind="confirmation")
        key = parse_public_key(found.armored)
        if key.expired(now):
            raise InvalidParams([FieldError("token", "the key has expired since it was uploaded")])
        stored = await store.key(tx, key.fingerprint)
        text = await publishable(tx, key, owner_addresses(stored) | {found.email})
        await store_key(tx, stored, text, email=found.email, user_id=found.user_id, now=now)
        await store.list_key(tx, key.fingerprint, found.email, "owner", found.user_id, now)
        stored = await store.key(tx, key.fingerprint)
    assert stored is not None
    log.info("key %s confirmed for %s", key.fingerprint, found.email)
    return directory_entry(stored, found.email, served=True)
