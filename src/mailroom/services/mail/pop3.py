"""mail.pop3.*: what a POP3 session (frontends/pop3) asks of the mailbox.

The front-end speaks RFC 1939 and calls these (internal methods: only the process itself
may) for the policy and the data:

- ``login``: the address and a password, app password (naming ``pop3``) or API key, checked
  by the :class:`~mailroom.auth.authenticate.Authenticator` (the brute-force guard counts
  the failures with the client's address); the user's ``enable_pop`` flag decides.
- ``open``: takes the maildrop lock (one session per user in every worker: a row of
  ``pop3_locks``) and lists the INBOX, oldest first, with each message's stable id (its
  email id: the UIDL) and size.
- ``message``: the octets of one message, as stored (trace lines and blob).
- ``renew`` keeps the lock while the session runs; ``close`` carries out the deletions of
  the session (QUIT: RFC 1939's UPDATE state) as the user's ``pop3.deletion`` setting says
  (``archive``, ``trash`` or ``delete``) and releases the lock.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError

from mailroom.domain.clientsettings import Pop3Deletion, Pop3Settings
from mailroom.domain.numbers import Id
from mailroom.errors import RateLimited, Unauthenticated
from mailroom.registry import Context, Download, Internal
from mailroom.runtime import Runtime
from mailroom.services.mail._actions import Target, apply
from mailroom.services.mail._api import api
from mailroom.services.mail._auth import authenticator_of
from mailroom.services.mail._push import announce_threads
from mailroom.store import accounts
from mailroom.store import client_settings as preferences_store
from mailroom.store import emails as email_store
from mailroom.store import mailbox_queries as queries
from mailroom.store import pop3 as pop3_store
from mailroom.store.blobs import BlobNotFound

log = logging.getLogger("mailroom.pop3")

#: A session id: the front-end's random token naming the lock's holder.
SessionId = Annotated[str, Field(pattern=r"^[0-9a-f]{16,32}$")]
#: How long a lock outlives its session's last sign of life (the session's idle timeout
#: closes it first; this margin covers a renewal in flight).
LOCK_MARGIN_SECONDS = 60.0
#: Deleted messages are removed this many at a time (bound parameters per statement).
_CHUNK = 500


class Pop3Login(BaseModel):
    """The verdict on a POP3 login: ``ok`` with the user, or why not."""

    ok: bool
    #: ``invalid`` (wrong credentials), ``disabled`` (POP3 not enabled for the user),
    #: ``rate_limited`` (the guard's lockout).
    reason: Literal["", "invalid", "disabled", "rate_limited"] = ""
    user_id: int = 0
    email: str = ""
    retry_after: int = 0
    #: What the login used (``password``, ``app:<id>``, ...; no secret): the session
    #: registers with it, so that revoking that credential cuts it.
    credential: str = ""


class MaildropMessage(BaseModel):
    """One message of the maildrop: its stable id (the UIDL) and size in octets."""

    id: int
    size: int


class Maildrop(BaseModel):
    """The locked maildrop, or ``locked`` false when another session holds it."""

    locked: bool
    messages: list[MaildropMessage] = Field(default_factory=list)


class Pop3Closed(BaseModel):
    """What QUIT did: how many messages it removed from the maildrop, and how."""

    removed: int
    deletion: Pop3Deletion


@api.method("mail.pop3.login", access=Internal())
async def login(
    ctx: Context,
    user: Annotated[str, Field(max_length=512)],
    password: Annotated[SecretStr, Field(max_length=4096)],
) -> Pop3Login:
    """Check a POP3 login (the client's address is the call's ``client_ip``)."""
    try:
        principal = await authenticator_of(ctx).basic(
            user, password.get_secret_value(), ctx.call.client_ip, "pop3"
        )
    except RateLimited as error:
        return Pop3Login(ok=False, reason="rate_limited", retry_after=error.retry_after)
    except Unauthenticated:
        return Pop3Login(ok=False, reason="invalid")
    if principal.user_id is None or principal.email is None:
        return Pop3Login(ok=False, reason="invalid")  # an API key of no user has no maildrop
    async with ctx.rt.db.read() as tx:
        services = await accounts.enabled_services(tx, principal.user_id)
    if "pop3" not in services:
        return Pop3Login(ok=False, reason="disabled")
    return Pop3Login(
        ok=True, user_id=principal.user_id, email=principal.email, credential=principal.credential
    )


def _expiry(rt: Runtime) -> timedelta:
    return timedelta(seconds=rt.settings.pop3_idle_timeout_seconds + LOCK_MARGIN_SECONDS)


@api.method("mail.pop3.open", access=Internal(), mutating=True)
async def open_maildrop(ctx: Context, user_id: Id, session: SessionId) -> Maildrop:
    """Lock the user's maildrop for ``session`` and list it (the INBOX, oldest first)."""
    now = ctx.rt.clock.now()
    async with ctx.rt.db.write() as tx:
        if not await pop3_store.lock(tx, user_id, session, now, now + _expiry(ctx.rt)):
            return Maildrop(locked=False)
        entries = await pop3_store.maildrop(tx, user_id)
    return Maildrop(locked=True, messages=[MaildropMessage(id=e.email_id, size=e.size) for e in entries])


@api.method("mail.pop3.renew", access=Internal(), mutating=True)
async def renew(ctx: Context, user_id: Id, session: SessionId) -> bool:
    """Keep ``session``'s lock; false when it no longer holds it."""
    async with ctx.rt.db.write() as tx:
        return await pop3_store.renew(tx, user_id, session, ctx.rt.clock.now() + _expiry(ctx.rt))


@api.method("mail.pop3.message", access=Internal())
async def message(ctx: Context, user_id: Id, id: Id) -> Download:
    """The octets of one message of the user (trace lines, then the message as received);
    an empty download when it is gone."""
    async with ctx.rt.db.read() as tx:
        stored = await pop3_store.stored_message(tx, user_id, id)
    if stored is None:
        return Download(b"", content_type="message/rfc822")
    try:
        blob = await ctx.rt.blobs.get(stored.blob_sha)
    except BlobNotFound:
        log.error("email %d has no blob %s", id, stored.blob_sha)
        return Download(b"", content_type="message/rfc822")
    raw = stored.trace.encode("utf-8") + blob if stored.trace else blob
    return Download(raw, content_type="message/rfc822")


async def deletion_of(rt: Runtime, user_id: int) -> Pop3Deletion:
    """The user's ``pop3.deletion`` setting (the default when unset or unreadable)."""
    async with rt.db.read() as tx:
        stored = await preferences_store.get(tx, user_id)
    try:
        return Pop3Settings.model_validate(stored.get("pop3") or {}).deletion
    except ValidationError:
        return Pop3Settings().deletion


@api.method("mail.pop3.close", access=Internal(), mutating=True)
async def close(
    ctx: Context,
    user_id: Id,
    session: SessionId,
    deleted: Annotated[list[Id], Field(max_length=1_000_000)],
) -> Pop3Closed:
    """End ``session``: remove the messages it deleted (as the user's setting says) and
    release the lock. Messages gone meanwhile are skipped."""
    rt = ctx.rt
    mode = await deletion_of(rt, user_id) if deleted else Pop3Settings().deletion
    thread_ids: list[int] = []
    removed = 0
    async with rt.db.write() as tx:
        ids = sorted(set(deleted))
        for start in range(0, len(ids), _CHUNK):
            owned = await queries.thread_ids_of_emails(tx, user_id, ids[start : start + _CHUNK])
            thread_ids.extend(owned.values())
            removed += len(owned)
            if mode == "delete":
                rows = await email_store.delete_emails(tx, user_id, sorted(owned))
                await queries.release_blobs(tx, rt.blobs, [r.blob_sha for r in rows])
            elif owned:
                targets = {e: Target((e,), (t,)) for e, t in owned.items()}
                await apply(tx, rt, user_id, mode, targets, label=None, until=None)
        await pop3_store.unlock(tx, user_id, session)
    if thread_ids:
        await announce_threads(rt, user_id, sorted(set(thread_ids)), mode)
    return Pop3Closed(removed=removed, deletion=mode)
