"""Sending mail: :func:`submit` is the one entry point (SMTP submission, the mail client API).

``submit(rt, raw, mail_from=..., recipients=[...], source=..., sender_user_id=...)``:

1. adds ``Message-ID`` and ``Date`` when the message has none;
2. DKIM-signs it for the domain of its ``From`` address (else the envelope sender's) when
   that domain has a key (relaxed/relaxed, delivery/signing.py);
3. delivers local recipients at once through ingest (delivery/ingest.py: the same path as
   arriving mail, so aliases, forwarding, quotas and auto-replies apply);
4. stores the sender's copy with the ``sent`` label (when ``sender_user_id`` is given);
5. queues the remote recipients: one ``outbound_queue`` row for the message, one
   ``outbound_recipients`` row per recipient (local ones too, with their outcome, so the
   message's status is in one place), the bytes stored once as a blob.

It answers one :class:`RecipientStatus` per recipient, in order: ``delivered`` (stored
locally), ``queued`` (the queue worker, delivery/queue.py, will send it) or ``error`` with
the reason (unknown local address, disabled mailbox, malformed address). A local
recipient that fails temporarily (a full mailbox) is queued: the worker retries ingest. Checking
*who may send* (authentication, the envelope sender, rate limits) is the caller's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from mailroom.delivery.ingest import IngestOptions, Source, ingest
from mailroom.delivery.resolve import LocalTarget, Resolution, SrsKey, normalize_recipient, resolve
from mailroom.delivery.signing import complete_headers, dkim_sign, from_domain, header_value
from mailroom.delivery.trace import DEFAULT_PROTOCOL, Arrival
from mailroom.runtime import Runtime
from mailroom.store import blobs as blob_rows
from mailroom.store import dkim as dkim_store
from mailroom.store import emails as email_store
from mailroom.store import outbound as store
from mailroom.store import recipients as recipient_store
from mailroom.store.engine import Tx
from mailroom.store.outbound import NewRecipient

log = logging.getLogger("mailroom.outbound")

Status = Literal["delivered", "queued", "error"]


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One recipient's outcome of :func:`submit`; ``reason`` is the SMTP reply for errors."""

    address: str
    status: Status
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What :func:`submit` did: the message's id, its queue entry and sent copy, per recipient."""

    message_id: str | None
    queue_id: int | None
    sent_email_id: int | None
    recipients: list[RecipientStatus] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """True when at least one recipient was delivered or queued."""
        return any(r.status != "error" for r in self.recipients)


@dataclass(slots=True)
class _Split:
    local: list[Resolution] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


async def _split(rt: Runtime, recipients: Sequence[str]) -> _Split:
    """Local (ours: mailboxes, aliases, relayed domains), remote, or refused."""
    out = _Split()
    # Our SRS addresses are decoded as at RCPT (the submission listener accepts them there).
    srs_key = SrsKey.of(rt)
    async with rt.db.read() as tx:
        for address in recipients:
            resolution = await resolve(
                tx, address, delimiters=rt.settings.recipient_delimiter, srs_key=srs_key
            )
            if resolution.status == "not_local":
                out.remote.append(resolution.address)
            elif resolution.accepted:
                out.local.append(resolution)
            else:
                out.errors[address] = resolution.reply
    return out


async def sign(rt: Runtime, raw: bytes, *, envelope_sender: str = "") -> bytes:
    """``raw`` DKIM-signed for its From domain (or the envelope sender's) if it has a key."""
    domains = [d for d in (from_domain(raw), envelope_sender.rpartition("@")[2].lower()) if d]
    async with rt.db.read() as tx:
        for domain in dict.fromkeys(domains):
            key = await dkim_store.private_key(tx, domain)
            if key is not None and key["private_key"]:
                break
        else:
            return raw
    return await dkim_sign(
        raw, domain=domain, selector=str(key["selector"]), private_pem=str(key["private_key"])
    )


async def store_queued(
    tx: Tx,
    rt: Runtime,
    raw: bytes,
    sha: str,
    *,
    source: str,
    mail_from: str,
    recipients: Sequence[NewRecipient],
    user_id: int | None = None,
    email_id: int | None = None,
    message_id: str | None = None,
) -> int:
    """Queue ``raw`` (already written to the blob store as ``sha``) inside ``tx``.

    ``message_id`` defaults to the message's own ``Message-ID`` header, so every entry
    (forwards, aliases, relays, auto-replies, DSNs) records it.
    """
    now = rt.clock.now()
    if message_id is None:
        message_id = header_value(raw, "message-id")
    await blob_rows.record(tx, sha, len(raw), now)
    await rt.blobs.ensure(sha, raw)  # a collector may have removed the file meanwhile
    return await store.enqueue(
        tx,
        source=source,
        mail_from=mail_from,
        recipients=recipients,
        blob_sha=sha,
        size=len(raw),
        now=now,
        user_id=user_id,
        email_id=email_id,
        message_id=message_id,
        subject=(header_value(raw, "subject") or "")[:500],
    )


def wake_queue(rt: Runtime) -> None:
    """Tell this process's queue worker that there is work (other processes poll)."""
    worker = rt.extras.get("outbound_queue")
    if worker is not None:
        worker.wake()


async def _sent_copy(rt: Runtime, raw: bytes, *, mail_from: str, user_id: int, source: Source) -> int | None:
    async with rt.db.read() as tx:
        sender = await store.sender_profile(tx, user_id)
    if sender is None:
        return None
    target = Resolution(sender["email"], "accepted", [LocalTarget(user_id, sender["email"])])
    [result] = await ingest(
        rt,
        raw,
        mail_from=mail_from,
        recipients=[target],
        source=source,
        options=IngestOptions(labels=("sent",), is_read=True, trace=False),
    )
    if not result.ok or not result.email_ids:
        log.warning("sent copy for user %s not stored: %s", user_id, result.reply)
        return None
    email_id = result.email_ids[0]
    if result.duplicate:
        # Sent to oneself: the inbox copy is the same message; it carries both labels.
        async with rt.db.write() as tx:
            await email_store.change_labels(tx, user_id, [email_id], add=["sent"], now=rt.clock.now())
    return email_id


async def submit(
    rt: Runtime,
    raw: bytes,
    *,
    mail_from: str,
    recipients: list[str],
    source: str,
    sender_user_id: int | None,
) -> SubmitResult:
    """Send a message a user wrote (see the module docstring). The one entry point for sending.

    ``mail_from``: the envelope sender, already checked by the caller ('' for none).
    ``recipients``: envelope recipients (duplicates are sent once). ``source``: how it came
    (``submission`` for SMTP, ``api`` for the mail client API), recorded on the queue entry
    (the sent copy is stored as ``api``: see below).
    ``sender_user_id``: whose ``sent`` label gets a copy (None: no copy).
    """
    if not recipients:
        raise ValueError("a message needs at least one recipient")
    now = rt.clock.now()
    raw, message_id = complete_headers(raw, hostname=rt.settings.hostname, now=now)
    raw = await sign(rt, raw, envelope_sender=mail_from)
    wanted = list(dict.fromkeys(normalize_recipient(r) or r.strip() for r in recipients))
    split = await _split(rt, wanted)
    outcome: dict[str, NewRecipient] = {}
    for address, reply in split.errors.items():
        outcome[address] = NewRecipient(address, status="failed", code=int(reply[:3]), reply=reply)
    if split.local:
        # Received: "with HTTP" for the mail client API, "with ESMTPSA" for submission.
        arrival = Arrival(DEFAULT_PROTOCOL["api" if source == "api" else "submission"])
        results = await ingest(
            rt,
            raw,
            mail_from=mail_from,
            recipients=split.local,
            source="submission",
            options=IngestOptions(arrival=arrival),
        )
        for resolution, result in zip(split.local, results, strict=True):
            if result.temporary:
                # A full mailbox or a database hiccup: the queue tries ingest again later.
                outcome[resolution.address] = NewRecipient(
                    resolution.address, code=result.code, reply=result.reply
                )
                continue
            status = "delivered" if result.ok else "failed"
            outcome[resolution.address] = NewRecipient(
                resolution.address, status=status, code=result.code, reply=result.reply
            )
    # The sender's own copy is not mail arriving from someone: ingest must never auto-reply
    # to it (it answers smtp, lmtp and submission), so it is recorded as an API store.
    ingest_source: Source = "import" if source == "import" else "api"
    sent_email_id = None
    if sender_user_id is not None:
        sent_email_id = await _sent_copy(
            rt, raw, mail_from=mail_from, user_id=sender_user_id, source=ingest_source
        )
    for address in split.remote:
        outcome[address] = NewRecipient(address)
    ordered = [outcome[a] for a in wanted if a in outcome]
    sha = await rt.blobs.put(raw)
    async with rt.db.write(durable=True) as tx:
        queue_id = await store_queued(
            tx,
            rt,
            raw,
            sha,
            source=source[:16],
            mail_from=mail_from,
            recipients=ordered,
            user_id=sender_user_id,
            email_id=sent_email_id,
            message_id=message_id,
        )
    if any(r.status == "queued" for r in ordered):
        wake_queue(rt)
    statuses = [
        RecipientStatus(
            r.address,
            "queued" if r.status == "queued" else "delivered" if r.status == "delivered" else "error",
            None if r.status in ("queued", "delivered") else r.reply,
        )
        for r in ordered
    ]
    return SubmitResult(
        message_id=message_id, queue_id=queue_id, sent_email_id=sent_email_id, recipients=statuses
    )


async def check_sender(rt: Runtime, user_id: int, mail_from: str) -> str | None:
    """Why ``user_id`` may not use ``mail_from`` as envelope sender (None: they may).

    Allowed: the user's own address; an alias (exact, not wildcard) whose destinations
    include the user; the same in an alternative domain of theirs; anything with
    ``allow_spoofing``. The null sender is refused: users do not send bounces.
    """
    address = normalize_recipient(mail_from) if mail_from else None
    async with rt.db.read() as tx:
        user = await store.sender_profile(tx, user_id)
        if user is None or not user["enabled"]:
            return "the account is disabled"
        if user["allow_spoofing"] and mail_from:
            return None
        if address is None:
            return f"<{mail_from}>: sender address rejected: not owned by user {user['email']}"
        own = str(user["email"]).lower()
        candidates = [address]
        local, _, domain = address.rpartition("@")
        if await recipient_store.domain_kind(tx, domain) == "alternative":
            primary = await recipient_store.primary_of(tx, domain)
            if primary:
                candidates.append(f"{local}@{primary}")
        for candidate in candidates:
            if candidate == own:
                return None
            alias = await recipient_store.alias(tx, candidate)
            if alias is not None and own in {str(d).strip().lower() for d in alias["destinations"]}:
                return None
    return f"<{mail_from}>: sender address rejected: not owned by user {user['email']}"
