"""Sending mail: :func:`submit` is the one entry point (SMTP submission, the mail client API).

``submit(rt, raw, mail_from=..., recipients=[...], source=..., sender_user_id=...)``:

1. refuses it unless the user may send as its envelope sender and every ``From`` and
   ``Sender`` address (delivery/senders.py: ``SenderNotAllowed``, nothing stored);
2. adds ``Message-ID`` and ``Date`` when the message has none;
3. DKIM-signs it as the domain of its ``From`` when that is one of our domains with a key,
   and never as any other domain (aligned: :func:`sign`; relaxed/relaxed, delivery/signing.py);
4. delivers local recipients at once through ingest (delivery/ingest.py: the same path as
   arriving mail, so aliases, forwarding, quotas and auto-replies apply);
5. stores the sender's copy with the ``sent`` label (when ``sender_user_id`` is given);
6. queues the remote recipients: one ``outbound_queue`` row for the message, one
   ``outbound_recipients`` row per recipient (local ones too, with their outcome, so the
   message's status is in one place), the bytes stored once as a blob.

With ``hold_until`` (a delayed send: JMAP's FUTURERELEASE ``holdUntil``/``holdFor``) step 4
waits too: every recipient, local or remote, is queued with its first attempt at that time
(the queue worker delivers local ones through ingest), so nothing arrives before it and
the sender can cancel it until then (store/outbound.py ``cancel_held``).

It answers one :class:`RecipientStatus` per recipient, in order: ``delivered`` (stored
locally), ``queued`` (the queue worker, delivery/queue.py, will send it) or ``error`` with
the reason (unknown local address, disabled mailbox, malformed address). A local
recipient that fails temporarily (a full mailbox) is queued: the worker retries ingest.
Authentication and rate limits are the caller's; the sender rule is applied here, so that no
way of sending can forget it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from mailroom.delivery.ingest import IngestOptions, Source, ingest
from mailroom.delivery.resolve import LocalTarget, Resolution, SrsKey, normalize_recipient, resolve
from mailroom.delivery.senders import aligned_domain, check_may_send
from mailroom.delivery.signing import complete_headers, dkim_sign, header_value
from mailroom.delivery.trace import DEFAULT_PROTOCOL, Arrival
from mailroom.runtime import Runtime
from mailroom.store import blobs as blob_rows
from mailroom.store import dkim as dkim_store
from mailroom.store import emails as email_store
from mailroom.store import outbound as store
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


async def sign(rt: Runtime, raw: bytes) -> bytes:
    """``raw`` DKIM-signed as the domain of its ``From`` when that domain is one of ours with a
    key; otherwise unchanged.

    Aligned (DMARC) or not at all: never as the envelope sender's domain or any other, so a
    signature of ours vouches only for a From of ours. A From that is not one readable line
    in one domain (delivery/senders.py ``aligned_domain``) is not signed.
    """
    domain = aligned_domain(raw)
    if domain is None:
        return raw
    async with rt.db.read() as tx:
        key = await dkim_store.private_key(tx, domain)
    if key is None or not key.private_key:
        return raw
    return await dkim_sign(raw, domain=domain, selector=key.selector, private_pem=key.private_key)


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
    hold_until: datetime | None = None,
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
        hold_until=hold_until,
    )


def wake_queue(rt: Runtime) -> None:
    """Tell this process's queue worker that there is work (other processes poll)."""
    worker = rt.outbound_queue
    if worker is not None:
        worker.wake()


async def _sent_copy(rt: Runtime, raw: bytes, *, mail_from: str, user_id: int, source: Source) -> int | None:
    async with rt.db.read() as tx:
        sender = await store.sender_profile(tx, user_id)
    if sender is None:
        return None
    target = Resolution(sender.email, "accepted", [LocalTarget(user_id, sender.email)])
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
    copy_of: int | None = None,
    client_ip: str | None = None,
    client_helo: str | None = None,
    hold_until: datetime | None = None,
) -> SubmitResult:
    """Send a message a user wrote (see the module docstring). The one entry point for sending.

    ``mail_from``: the envelope sender ('' for none: refused for a user's mail).
    ``recipients``: envelope recipients (duplicates are sent once). ``source``: how it came
    (``submission`` for SMTP, ``api`` for the mail client API), recorded on the queue entry
    (the sent copy is stored as ``api``: see below).
    ``sender_user_id``: who sends it: the sender rule is theirs (``SenderNotAllowed``) and
    their ``sent`` label gets a copy. None only for mail the system itself sends.
    ``copy_of``: the sender's email this message already is (JMAP's EmailSubmission of a
    stored draft): no second copy is stored, and the queue entry names that one.
    ``hold_until``: send nothing, to anyone, before then (see the module docstring).
    """
    if not recipients:
        raise ValueError("a message needs at least one recipient")
    if sender_user_id is not None:
        await check_may_send(rt, sender_user_id, mail_from=mail_from, raw=raw)
    now = rt.clock.now()
    raw, message_id = complete_headers(raw, hostname=rt.settings.hostname, now=now)
    raw = await sign(rt, raw)
    wanted = list(dict.fromkeys(normalize_recipient(r) or r.strip() for r in recipients))
    split = await _split(rt, wanted)
    outcome: dict[str, NewRecipient] = {}
    for address, reply in split.errors.items():
        outcome[address] = NewRecipient(address, status="failed", code=int(reply[:3]), reply=reply)
    if hold_until is not None:
        for resolution in split.local:
            outcome[resolution.address] = NewRecipient(resolution.address)
    elif split.local:
        # Received: "with HTTP" for the mail client API, "with ESMTPSA" for submission.
        # The submitting client's address and HELO (through a proxy: the ones XCLIENT named).
        arrival = Arrival(
            DEFAULT_PROTOCOL["api" if source == "api" else "submission"], client_helo, client_ip
        )
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
    sent_email_id = copy_of
    if sender_user_id is not None and copy_of is None:
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
            hold_until=hold_until,
        )
    if hold_until is None and any(r.status == "queued" for r in ordered):
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
