"""The one ingest operation every way mail arrives goes through: SMTP, LMTP, the API, imports.

``ingest(rt, raw, mail_from=..., recipients=[...], source=...)`` stores one message for the
recipients already resolved (delivery/resolve.py) and answers one outcome per recipient, the
way LMTP reports them (RFC 2033):

1. The raw message is written once to the blob store (content-addressed, fsync'd) however
   many mailboxes get it, and parsed once; the blob's write and fsyncs (a worker thread)
   overlap the parse and the SQL of step 2.
2. One database write transaction then, per mailbox: skips it if the same message is
   already there (dedup key: Message-ID + SHA-256 of the bytes), checks the quota (over
   quota: ``452 4.2.2``, nothing stored for that mailbox), labels it (``inbox``, or ``spam``
   by the mailbox's spam rule, or the labels an import gives), threads it, inserts the
   email row (with that mailbox's ``Return-Path``, ``Delivered-To`` and ``Received`` lines,
   made without parsing: delivery/trace.py), indexes it for full-text search and adds its
   size to the quota used. It also records the outbound intents (forwards, external alias
   destinations, relayed domains, auto-replies) in the same transaction.
3. Only after the commit (fsync'd: SQLite ``synchronous=FULL``, PostgreSQL's WAL) does a
   recipient get ``250``.

Durability: the blob is durable before the transaction commits (each delivery waits for its
blob's fsyncs inside its savepoint, after its rows are written) and the rows are durable when
it commits, so a crash before the commit loses nothing acknowledged (the client retries; the
orphan blob is reused or collected), and a crash after it loses nothing at all. A retry of a
message that was stored but whose ``250`` never reached the client finds the dedup key and
answers ``250`` again without storing a second copy.

Any unexpected failure answers ``451 4.3.0`` (temporary) for every recipient: never a 5xx.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from mailroom.delivery import mime, threading
from mailroom.delivery._html import html_to_text
from mailroom.delivery._model import ParsedMessage
from mailroom.delivery.autoreply import reply_blocker
from mailroom.delivery.parse import parse_message
from mailroom.delivery.push import StoredEmail, announce_received
from mailroom.delivery.resolve import ExternalTarget, Resolution
from mailroom.delivery.spam import is_spam
from mailroom.delivery.trace import DEFAULT_PROTOCOL, Arrival, Trace, TraceStamp, read_trace, rfc5322_date
from mailroom.runtime import Runtime
from mailroom.store import blobs as blob_rows
from mailroom.store import changelog, fulltext, intents
from mailroom.store import emails as email_store
from mailroom.store import imap as keyword_store
from mailroom.store import labels as label_store
from mailroom.store import recipients as mailbox_store
from mailroom.store import threads as thread_store
from mailroom.store.engine import Tx
from mailroom.store.group_commit import GroupCommit

log = logging.getLogger("mailroom.delivery")

Source = Literal["smtp", "lmtp", "api", "import", "submission"]
#: Sources that are mail arriving from someone: auto-replies answer only these.
_ANSWERABLE: frozenset[str] = frozenset({"smtp", "lmtp", "submission"})
#: Messages larger than this are parsed in a worker thread, so the loop keeps serving.
_PARSE_INLINE_BYTES = 256 * 1024
#: HTML bodies longer than this are converted for the search index in a worker thread
#: (html_to_text: ~6 ms for 18 KB).
_HTML_INLINE_CHARS = 32 * 1024
#: Longer ids are stored as a digest: index entries have a size limit (PostgreSQL ~2.7 kB).
_MAX_ID_BYTES = 500


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """What the source knows beyond the bytes (imports and the API use these).

    ``labels``: the labels to give (system or user names); None means ``inbox``, or ``spam``
    by the mailbox's rule. ``received_at``: the arrival time to record (imports pass the
    message's date so old mail sorts as old); None means now. ``trace``: put
    ``Return-Path``, ``Delivered-To`` and ``Received`` in front of the stored message
    (delivery/trace.py); false for mail that did not arrive now (imports), the caller's own
    copies (drafts, ``sent``). ``arrival``: the client and protocol for ``Received`` (the
    listeners pass their session's); None: the source's default protocol, no client.
    ``keywords``: keywords beyond the flag columns (lower case, checked by the caller),
    stored in the same transaction as the email. ``always_new``: store a new email even when
    the same bytes are there already (IMAP APPEND: every APPEND adds a message, RFC 9051
    §6.3.12, with the flags it names, not an older copy's).
    """

    labels: tuple[str, ...] | None = None
    is_read: bool = False
    is_starred: bool = False
    is_draft: bool = False
    received_at: datetime | None = None
    trace: bool = True
    arrival: Arrival | None = None
    keywords: tuple[str, ...] = ()
    always_new: bool = False


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """One recipient's outcome: the SMTP/LMTP reply and the emails stored for it."""

    address: str
    reply: str
    email_ids: tuple[int, ...] = ()
    duplicate: bool = False

    @property
    def code(self) -> int:
        return int(self.reply[:3])

    @property
    def ok(self) -> bool:
        return self.code < 300

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500


@dataclass(slots=True)
class _Outcome:
    reply: str | None = None  # None: stored (or already there)
    email_id: int | None = None
    duplicate: bool = False


@dataclass(slots=True)
class _Message:
    raw: bytes
    sha: str
    blob: asyncio.Future[str]  # the blob's write and fsyncs, running in a worker thread
    parsed: ParsedMessage
    document: fulltext.SearchDocument  # made once, before the transaction, however many mailboxes
    mime: str  # the MIME structure (delivery/mime.py), stored on the blob's row
    trace: Trace
    dedup: str
    mail_from: str
    source: Source
    options: IngestOptions
    received_at: datetime
    now: datetime
    stamp: TraceStamp | None  # the trace headers' shared part, None when none are written
    rcpts_of: dict[int, list[str]] = field(default_factory=dict)
    stored: list[StoredEmail] = field(default_factory=list)  # announced after the commit


def temporary_failure(address: str) -> str:
    return f"451 4.3.0 <{address}>: temporary failure, try again later"


def _delivered(address: str) -> str:
    return f"250 2.0.0 <{address}> delivered"


def id_key(message_id: str) -> str:
    """A Message-ID as stored and looked up: as it is, or a digest when it is huge."""
    if len(message_id.encode("utf-8")) <= _MAX_ID_BYTES:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()


def dedup_key(message_id: str | None, sha: str) -> str:
    """Message-ID + content hash: the same bytes with the same id are the same delivery."""
    return hashlib.sha256(f"{message_id or ''}\n{sha}".encode()).hexdigest()


async def _parse(raw: bytes) -> ParsedMessage:
    if len(raw) <= _PARSE_INLINE_BYTES:
        return parse_message(raw)
    return await asyncio.to_thread(parse_message, raw)


async def _document(parsed: ParsedMessage) -> fulltext.SearchDocument:
    html = parsed.html_body if not parsed.text_body else None
    if html is None or len(html) <= _HTML_INLINE_CHARS:
        return search_document(parsed)
    return await asyncio.to_thread(search_document, parsed)


async def _digest(raw: bytes) -> str:
    if len(raw) <= _PARSE_INLINE_BYTES:
        return blob_rows.sha256_hex(raw)  # ~15 microseconds for 10 KB: cheaper than a thread hop
    return await asyncio.to_thread(blob_rows.sha256_hex, raw)


def _observe(future: asyncio.Future[Any]) -> None:
    # A blob write whose delivery never reached the database (the caller went away, its
    # savepoint failed first) must not be reported as an exception nobody retrieved.
    if not future.cancelled():
        future.exception()


class InFlight:
    """The ingest calls under way in this process (shutdown waits for them: :func:`drain`)."""

    def __init__(self) -> None:
        self.count = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def enter(self) -> None:
        self.count += 1
        self.idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.idle.set()


def _in_flight(rt: Runtime) -> InFlight:
    in_flight = rt.ingest_in_flight
    if in_flight is None:
        in_flight = rt.ingest_in_flight = InFlight()
    return in_flight


async def ingest(
    rt: Runtime,
    raw: bytes,
    *,
    mail_from: str,
    recipients: Sequence[Resolution],
    source: Source,
    options: IngestOptions | None = None,
) -> list[RecipientResult]:
    """Store ``raw`` for ``recipients`` and return one result per recipient, in order.

    Recipients that did not resolve (``accepted`` false) get their resolution's reply.
    """
    in_flight = _in_flight(rt)
    in_flight.enter()
    try:
        return await _ingest(
            rt, raw, mail_from=mail_from, recipients=recipients, source=source, options=options
        )
    finally:
        in_flight.leave()


async def _ingest(
    rt: Runtime,
    raw: bytes,
    *,
    mail_from: str,
    recipients: Sequence[Resolution],
    source: Source,
    options: IngestOptions | None,
) -> list[RecipientResult]:
    options = options or IngestOptions()
    if len(raw) > rt.settings.max_message_bytes:
        return [
            RecipientResult(r.address, f"552 5.3.4 <{r.address}>: message size exceeds the limit")
            for r in recipients
        ]
    accepted = [r for r in recipients if r.accepted]
    if not accepted:
        return [RecipientResult(r.address, r.reply) for r in recipients]
    trace = read_trace(raw)
    if trace.received > rt.settings.max_hops:
        return [
            RecipientResult(
                r.address, f"554 5.4.6 <{r.address}>: too many hops, mail loop?" if r.accepted else r.reply
            )
            for r in recipients
        ]
    try:
        sha = await _digest(raw)
        # The blob's write and fsyncs (a worker thread, waiting on the disk) overlap the parse
        # (CPU) and the delivery's SQL; _deliver waits for them before the commit.
        stored = asyncio.ensure_future(rt.blobs.put(raw, sha))
        stored.add_done_callback(_observe)
        parsed = await _parse(raw)
        document = await _document(parsed)
        structure = await mime.compute_async(raw)
        now = rt.clock.now()
        dedup = dedup_key(parsed.message_id, sha if not options.always_new else sha + secrets.token_hex(16))
        stamp = None
        if options.trace and not options.is_draft:
            stamp = TraceStamp.make(
                raw=raw,
                mail_from=mail_from,
                arrival=options.arrival or Arrival(DEFAULT_PROTOCOL[source]),
                host=rt.settings.hostname,
                id_=dedup[:16],
                date=rfc5322_date(now),
            )
        message = _Message(
            raw=raw,
            sha=sha,
            blob=stored,
            parsed=parsed,
            document=document,
            mime=structure,
            trace=trace,
            dedup=dedup,
            mail_from=mail_from,
            source=source,
            options=options,
            received_at=options.received_at or now,
            now=now,
            stamp=stamp,
        )
        results = await _group_commit(rt).submit((message, accepted))
    except Exception:
        log.exception("ingest failed; every recipient gets a temporary failure")
        return [
            RecipientResult(r.address, temporary_failure(r.address) if r.accepted else r.reply)
            for r in recipients
        ]
    by_address = {r.address: r for r in results}
    return [by_address[r.address] if r.accepted else RecipientResult(r.address, r.reply) for r in recipients]


#: What the group commit is given per message: the message and its resolved recipients.
_Delivery = tuple[_Message, list[Resolution]]


def _group_commit(rt: Runtime) -> GroupCommit[_Delivery, list[RecipientResult]]:
    """The process's one committer of deliveries (store/group_commit.py): deliveries that
    arrive while a commit runs share the next transaction and its fsync."""
    committer = rt.group_commit
    if committer is not None:
        return committer

    async def work(tx: Tx, delivery: _Delivery) -> list[RecipientResult]:
        return await _deliver(tx, rt, *delivery)

    async def announce(committed: list[tuple[_Delivery, list[RecipientResult]]]) -> None:
        # Push, after the commit and the replies: a savepoint that failed stored nothing.
        await announce_received(rt, [s for (msg, _), _ in committed for s in msg.stored])

    created: GroupCommit[_Delivery, list[RecipientResult]] = GroupCommit(rt.db, work, announce)
    rt.group_commit = created
    return created


async def drain(rt: Runtime) -> None:
    """Wait for the deliveries under way and their announcements (shutdown, before the
    database and the event broker close).

    The listeners are closed first; on Python 3.11 ``Server.wait_closed()`` does not wait
    for the sessions still open, so a message being delivered may still be parsed,
    resolved or committed here.
    """
    if rt.ingest_in_flight is not None:
        await rt.ingest_in_flight.idle.wait()
    if rt.group_commit is not None:
        await rt.group_commit.drain()


async def _deliver(tx: Tx, rt: Runtime, msg: _Message, recipients: list[Resolution]) -> list[RecipientResult]:
    await blob_rows.record(tx, msg.sha, len(msg.raw), msg.now, mime=msg.mime)
    results = await _deliver_rows(tx, rt, msg, recipients)
    # Only now wait for the blob (its fsyncs ran beside the parse and the SQL above): it is
    # durable before the commit. A failed write fails this delivery's savepoint alone.
    await msg.blob
    await rt.blobs.ensure(msg.sha, msg.raw)  # a collector may have removed the file meanwhile
    return results


async def _deliver_rows(
    tx: Tx, rt: Runtime, msg: _Message, recipients: list[Resolution]
) -> list[RecipientResult]:
    for r in recipients:
        for target in r.local:
            msg.rcpts_of.setdefault(target.user_id, []).append(r.address)
    mailboxes = await mailbox_store.mailboxes(tx, list(msg.rcpts_of))
    outcomes: dict[int, _Outcome] = {}
    for user_id, rcpts in msg.rcpts_of.items():
        outcomes[user_id] = await _store_for(tx, rt, msg, mailboxes.get(user_id), rcpts[0])
    results: list[RecipientResult] = []
    for r in recipients:
        external_ok, looped = await _record_external(tx, msg, r.external)
        mine = [outcomes[t.user_id] for t in r.local]
        failures = [o.reply for o in mine if o.reply is not None]
        temporary = [f for f in failures if f.startswith("4")]
        stored = [o for o in mine if o.reply is None]
        if temporary:
            reply = temporary[0]
        elif stored or external_ok:
            reply = _delivered(r.address)
        elif looped:
            reply = f"554 5.4.6 <{r.address}>: mail forwarding loop"
        else:
            reply = failures[0] if failures else f"550 5.1.1 <{r.address}>: recipient address rejected"
        ids = tuple(o.email_id for o in stored if o.email_id is not None)
        duplicate = bool(stored) and all(o.duplicate for o in stored)
        results.append(RecipientResult(r.address, reply.replace("<?>", f"<{r.address}>"), ids, duplicate))
    return results


async def _store_for(
    tx: Tx, rt: Runtime, msg: _Message, user: mailbox_store.Mailbox | None, rcpt: str
) -> _Outcome:
    """Store the message in one mailbox (or find it there already)."""
    if user is None:
        return _Outcome("550 5.1.1 <?>: recipient address rejected: user unknown")
    user_id = user.id
    existing = await email_store.find_by_dedup(tx, user_id, msg.dedup)
    if existing is not None:
        return _Outcome(email_id=existing, duplicate=True)
    if not user.enabled:
        return _Outcome("550 5.2.1 <?>: mailbox disabled")
    trace = msg.stamp.lines(rcpt) if msg.stamp is not None else None
    size = len(msg.raw) + (len(trace.encode("utf-8")) if trace else 0)
    quota = user.quota_bytes
    if quota > 0 and user.quota_bytes_used + size > quota:
        return _Outcome("452 4.2.2 <?>: mailbox full")
    parsed = msg.parsed
    spam = msg.options.labels is None and is_spam(
        spam_enabled=user.spam_enabled,
        threshold=user.spam_threshold,
        score=parsed.spam_score,
        flag=parsed.spam_flag,
    )
    names = list(msg.options.labels) if msg.options.labels is not None else ["spam" if spam else "inbox"]
    if msg.options.is_starred and "starred" not in names:
        names.append("starred")
    label_ids = await label_store.ensure(tx, user_id, names, msg.now)
    message_id = id_key(parsed.message_id) if parsed.message_id else None
    thread_id, new_thread = await threading.assign_thread(
        tx,
        user_id,
        message_id=message_id,
        in_reply_to=[id_key(i) for i in parsed.in_reply_to],
        references=[id_key(i) for i in parsed.references],
        subject=parsed.subject,
        received_at=msg.received_at,
        window=timedelta(days=rt.settings.thread_subject_window_days),
    )
    # A thread made for this email is not muted (nothing to read).
    if (
        msg.options.labels is None
        and not spam
        and not new_thread
        and await thread_store.is_muted(tx, thread_id)
    ):
        # A muted thread's new mail skips the inbox (it is known only once threaded).
        names = ["archive" if n == "inbox" else n for n in names]
        label_ids = await label_store.ensure(tx, user_id, names, msg.now)
    row = _email_row(msg, user_id, thread_id, message_id, spam, user, rcpt, trace, size)
    email_id = await email_store.insert_email(tx, row)
    await email_store.add_labels(tx, email_id, label_ids.values())
    if msg.options.keywords:
        await keyword_store.change_keywords(tx, [email_id], add=msg.options.keywords)
    if new_thread:  # its summary is this email's: made from the row, nothing read back
        await thread_store.begin_with(tx, thread_id, user_id, email_id, row, label_ids.values())
    else:
        await thread_store.refresh(tx, thread_id)
    await fulltext.index(tx, email_id, user_id, msg.document, new=True)
    await email_store.add_quota_used(tx, user_id, size)
    if msg.source in _ANSWERABLE:
        await _maybe_autoreply(tx, rt, msg, user, email_id, spam)
    state = (await changelog.state(tx, user_id)).modseq  # a prepared primary-key read
    msg.stored.append(StoredEmail(user_id, email_id, thread_id, parsed, msg.source, state))
    return _Outcome(email_id=email_id)


def _addresses(values: Sequence[Any]) -> list[dict[str, str]]:
    return [a.to_dict() for a in values]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _email_row(
    msg: _Message,
    user_id: int,
    thread_id: int,
    message_id: str | None,
    spam: bool,
    user: mailbox_store.Mailbox,
    rcpt: str,
    trace: str | None,
    size: int,
) -> email_store.NewEmail:
    parsed, options = msg.parsed, msg.options
    return {
        **message_columns(parsed),
        "user_id": user_id,
        "thread_id": thread_id,
        "blob_sha": msg.sha,
        "message_id": message_id,
        "received_at": msg.received_at,
        "size": size,
        "is_read": options.is_read or (spam and user.spam_mark_as_read),
        "is_starred": options.is_starred or (options.labels is not None and "starred" in options.labels),
        "is_draft": options.is_draft,
        "source": msg.source,
        "mail_from": msg.mail_from[:320],
        "delivered_to": rcpt[:320],
        "dedup": msg.dedup,
        "version": 1,
        "trace": trace,
    }


def message_columns(parsed: ParsedMessage) -> email_store.MessageColumns:
    """The columns of an email row that come from the message itself (a replaced draft
    gets them anew: services/mail/drafts.py)."""
    return {
        "in_reply_to": list(parsed.in_reply_to),
        "references": list(parsed.references),
        "subject": parsed.subject,
        "from_addrs": _addresses(parsed.from_),
        "to_addrs": _addresses(parsed.to),
        "cc_addrs": _addresses(parsed.cc),
        "bcc_addrs": _addresses(parsed.bcc),
        "reply_to_addrs": _addresses(parsed.reply_to),
        "date": _utc(parsed.date),
        "snippet": parsed.snippet,
        "has_attachments": parsed.has_attachments,
        "attachments": [a.to_dict() for a in parsed.attachments],
        "encryption": parsed.encryption,
        "spam_score": parsed.spam_score,
    }


def search_document(parsed: ParsedMessage) -> fulltext.SearchDocument:
    """What the full-text index gets of a message."""
    people = [*parsed.from_, *parsed.to, *parsed.cc, *parsed.bcc, *parsed.reply_to]
    addresses = " ".join(f"{a.name} {a.email}".strip() for a in people)
    body = parsed.text_body or (html_to_text(parsed.html_body) if parsed.html_body else "")
    names = " ".join(a.filename for a in parsed.attachments if a.filename)
    return fulltext.SearchDocument(subject=parsed.subject, addresses=addresses, body=body, attachments=names)


async def _record_external(tx: Tx, msg: _Message, targets: Sequence[ExternalTarget]) -> tuple[bool, bool]:
    """Record forwards / alias destinations / relays; (anything recorded or known, a loop seen)."""
    ok = looped = False
    for target in targets:
        if target.reason != "relay" and target.via.lower() in msg.trace.delivered_to:
            # This message was already delivered to the forwarding mailbox once (the
            # outbound side adds Delivered-To when it forwards): it came back round.
            log.warning("forwarding loop: %s -> %s not repeated", target.via, target.address)
            looped = True
            continue
        dedup = hashlib.sha256(
            f"{target.reason}\n{target.via}\n{target.address}\n{msg.dedup}".encode()
        ).hexdigest()
        await intents.record(
            tx,
            kind=target.reason,
            dedup=dedup,
            now=msg.now,
            recipients=[target.address],
            mail_from=msg.mail_from,
            blob_sha=msg.sha,
            relay=target.relay,
            payload={"via": target.via},
        )
        ok = True
    return ok, looped


async def _maybe_autoreply(
    tx: Tx, rt: Runtime, msg: _Message, user: mailbox_store.Mailbox, email_id: int, spam: bool
) -> None:
    addressed_as = [user.email, *msg.rcpts_of.get(user.id, [])]
    blocker = reply_blocker(
        msg.parsed,
        user=user,
        mail_from=msg.mail_from,
        addressed_as=addressed_as,
        today=msg.now.date(),
        spam=spam,
    )
    if blocker is not None:
        return
    sender = msg.mail_from.strip().lower()
    interval = timedelta(days=rt.settings.autoreply_interval_days)
    if not await intents.claim_autoreply(tx, user.id, sender, msg.now, interval):
        return
    parsed = msg.parsed
    await intents.record(
        tx,
        kind="autoreply",
        dedup=hashlib.sha256(f"autoreply\n{user.id}\n{msg.dedup}".encode()).hexdigest(),
        now=msg.now,
        recipients=[sender],
        user_id=user.id,
        email_id=email_id,
        payload={
            "from": user.email,
            "display_name": user.display_name,
            "subject": user.reply_subject,
            "body": user.reply_body,
            "in_reply_to": parsed.message_id,
            "references": [*parsed.references, *([parsed.message_id] if parsed.message_id else [])],
            "original_subject": parsed.subject,
        },
    )
