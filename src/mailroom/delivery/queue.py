"""The outbound queue worker: intents become queued messages, queued messages get sent.

One :class:`OutboundQueue` runs in every worker process (started from the ASGI lifespan);
tests drive :meth:`OutboundQueue.run_once` with a fake clock. Each pass:

1. **Intents** (store/intents.py) ingest recorded: each is claimed (``pending`` →
   ``sending``), turned into a queued message and deleted in one transaction, so it is
   carried out once. Forwards and external alias destinations get ``Delivered-To: <via>``
   (ingest sees loops by it) and an SRS envelope sender (delivery/srs.py); relayed-domain
   mail keeps its envelope and goes to the relay's smarthost; mail to one of our SRS
   addresses (``srs``: bounces of forwarded mail) goes to the address it encodes like a
   forward, so a bounce keeps its null sender; auto-replies are built
   (delivery/replies.py), DKIM-signed and sent from the null sender.
2. **Due messages**: each is claimed by a compare-and-set on ``locked_until`` (safe across
   processes on SQLite and PostgreSQL; a dead worker's claim expires after
   ``queue_lease_seconds``). Recipients that are ours again (a DSN or auto-reply to a local
   sender) go through ingest; the others are grouped by next hop (their relayed domain's
   smarthost or the global one) and sent with aiosmtplib, one transaction per hop.
3. Outcomes: 2xx delivered; 4xx, connection failures and timeouts deferred, retried after
   ``queue_retry_base_seconds`` doubled per attempt up to ``queue_retry_max_seconds``; 5xx,
   or still deferred ``queue_max_age_seconds`` after queuing, failed. Failed recipients get
   one DSN (delivery/dsn.py) to the envelope sender, queued in the same transaction that
   records the failure; never for the null sender (a bounce is not bounced).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from mailroom.background import Periodic
from mailroom.delivery import relay as transport
from mailroom.delivery import srs
from mailroom.delivery.dsn import FailedRecipient, build_dsn
from mailroom.delivery.ingest import IngestOptions, ingest
from mailroom.delivery.outbound import sign, store_queued
from mailroom.delivery.push import announce_status
from mailroom.delivery.replies import build_autoreply
from mailroom.delivery.resolve import Resolution, resolve
from mailroom.delivery.signing import split_head
from mailroom.delivery.trace import Arrival
from mailroom.runtime import Runtime
from mailroom.store import outbound as store
from mailroom.store.blobs import BlobNotFound
from mailroom.store.outbound import WAITING, Intent, NewRecipient, QueuedMessage, QueuedRecipient

log = logging.getLogger("mailroom.outbound")
_PURGE_EVERY = timedelta(hours=1)


def backoff(settings: Any, attempts: int) -> timedelta:
    """Delay before attempt ``attempts + 1``: base × 2^(attempts − 1), capped."""
    base = settings.queue_retry_base_seconds
    seconds = min(base * (2 ** max(attempts - 1, 0)), settings.queue_retry_max_seconds)
    return timedelta(seconds=seconds)


def _add_header(raw: bytes, name: str, value: str) -> bytes:
    eol = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
    return f"{name}: {value}".encode() + eol + raw


def _same_message(intent: Intent) -> tuple[Any, ...]:
    """Intents with the same key send the same bytes from the same envelope sender: one
    queued message for all of them. An auto-reply is built for its one recipient."""
    if intent.kind == "autoreply":
        return ("autoreply", intent.id)
    # A relay's message goes out untouched; the others carry Delivered-To: <via>.
    via = None if intent.kind == "relay" else (intent.payload or {}).get("via")
    return (intent.kind, intent.blob_sha, intent.mail_from, intent.relay, via, intent.user_id)


class OutboundQueue(Periodic):
    """The worker; ``start()``/``stop()`` for the server, ``run_once()`` for tests.

    A pass every ``queue_poll_seconds``, or at once when :meth:`wake` says mail was queued.
    """

    name = "mailroom-outbound-queue"

    def __init__(self, rt: Runtime) -> None:
        super().__init__()
        self.rt = rt
        self._secret = rt.settings.secret_key.get_secret_value().encode()
        self._purged_at: datetime | None = None

    async def step(self) -> None:
        await self.run_once()

    async def delay(self) -> float:
        return self.rt.settings.queue_poll_seconds

    async def run_once(self) -> int:
        """One pass: take due intents, then attempt due messages; returns how many were handled.

        At most once an hour it also deletes entries finished ``queue_retention_days`` ago.
        """
        done = await self.take_intents()
        done += await self.deliver_due()
        await self.purge()
        return done

    async def purge(self) -> int:
        """Delete old finished entries (hourly at most); returns how many went."""
        now = self.rt.clock.now()
        if self._purged_at is not None and now - self._purged_at < _PURGE_EVERY:
            return 0
        self._purged_at = now
        before = now - timedelta(days=self.rt.settings.queue_retention_days)
        async with self.rt.db.write() as tx:
            return await store.purge_done(tx, before)

    # -- intents -------------------------------------------------------------------------
    def _stale(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.rt.settings.queue_lease_seconds)

    async def take_intents(self) -> int:
        """Carry out due intents; those that send the same bytes from the same sender (one
        message's relay recipients, one alias's or one mailbox's forward destinations) become
        one queued message, so each next hop gets them in one SMTP transaction."""
        now = self.rt.clock.now()
        async with self.rt.db.read() as tx:
            rows = await store.due_intents(tx, now, self._stale(now))
        groups: dict[tuple[Any, ...], list[Intent]] = {}
        for row in rows:
            groups.setdefault(_same_message(row), []).append(row)
        handled = 0
        for group in groups.values():
            async with self.rt.db.write() as tx:
                claimed = [r for r in group if await store.claim_intent(tx, r.id, now, self._stale(now))]
            if not claimed:
                continue
            try:
                await self._carry_out(claimed)
            except BlobNotFound:
                async with self.rt.db.write() as tx:
                    for r in claimed:
                        await store.fail_intent(tx, r.id, "the message's blob is missing", now)
            except Exception:
                ids = ", ".join(str(r.id) for r in claimed)
                log.exception("intent(s) %s failed; taken again after the lease", ids)
                continue
            handled += len(claimed)
        return handled

    async def _carry_out(self, intents: list[Intent]) -> None:
        """Queue the message of ``intents`` (one, or several of :func:`_same_message`) for all
        their recipients and delete them, in one transaction."""
        rt, now = self.rt, self.rt.clock.now()
        intent = intents[0]
        kind = intent.kind
        payload: Mapping[str, Any] = intent.payload or {}
        recipients = list(dict.fromkeys(str(r) for i in intents for r in i.recipients))
        mail_from = intent.mail_from or ""
        relay: str | None = None
        if kind == "autoreply":
            raw = build_autoreply(payload, to=recipients[0], hostname=rt.settings.hostname, now=now)
            raw = await sign(rt, raw)
            mail_from = ""
        else:
            raw = await rt.blobs.get(str(intent.blob_sha))
            if kind == "relay":
                relay = intent.relay or ""
            else:  # forward | alias | srs: SRS and Delivered-To (loop detection at ingest)
                via = str(payload.get("via") or "")
                raw = _add_header(raw, "Delivered-To", via)
                forwarder = via.rpartition("@")[2] or rt.settings.hostname
                # The null sender of a bounce stays null: never rewritten, never bounced.
                mail_from = srs.forward(mail_from, forwarder, self._secret, now)
                if kind == "srs":
                    # Mail to one of our SRS addresses, for the address it encodes: that
                    # domain's relay when it is a relayed domain, else (None) the global
                    # smarthost, as for any remote recipient.
                    relay = intent.relay
        sha = await rt.blobs.put(raw)
        async with rt.db.write(durable=True) as tx:
            await store_queued(
                tx,
                rt,
                raw,
                sha,
                source=kind,
                mail_from=mail_from,
                recipients=[NewRecipient(r, relay) for r in recipients],
                user_id=intent.user_id,
            )
            for i in intents:
                await store.drop_intent(tx, i.id)

    # -- queued messages -----------------------------------------------------------------
    async def deliver_due(self) -> int:
        now = self.rt.clock.now()
        async with self.rt.db.read() as tx:
            ids = await store.due(tx, now)
        handled = 0
        for queue_id in ids:
            until = now + timedelta(seconds=self.rt.settings.queue_lease_seconds)
            async with self.rt.db.write() as tx:
                if not await store.claim(tx, queue_id, now, until):
                    continue
            try:
                await self.attempt(queue_id)
            except Exception:
                log.exception("queue entry %s: attempt failed; retried after the lease", queue_id)
                continue
            handled += 1
        return handled

    async def attempt(self, queue_id: int) -> None:
        """Try every waiting recipient of a claimed message once and record the outcomes."""
        rt = self.rt
        async with rt.db.read() as tx:
            entry = await store.get(tx, queue_id)
            rows = await store.recipients(tx, queue_id)
        if entry is None:
            return
        waiting = [r for r in rows if r.status in WAITING]
        outcomes: dict[int, tuple[transport.Outcome, str | None]] = {}
        try:
            raw = await rt.blobs.get(entry.blob_sha) if entry.blob_sha else None
        except BlobNotFound:
            raw = None
        if raw is None:
            lost = transport.Outcome(554, "554 5.3.0 the message's content is missing from the store")
            outcomes = {r.id: (lost, None) for r in waiting}
        else:
            outcomes = await self._send(entry, waiting, raw)
        await self._record(entry, waiting, outcomes, raw)

    async def _send(
        self, entry: QueuedMessage, waiting: list[QueuedRecipient], raw: bytes
    ) -> dict[int, tuple[transport.Outcome, str | None]]:
        rt, settings = self.rt, self.rt.settings
        mail_from = entry.mail_from or ""
        outcomes: dict[int, tuple[transport.Outcome, str | None]] = {}
        local: list[tuple[QueuedRecipient, Resolution]] = []
        by_hop: dict[str | None, list[QueuedRecipient]] = defaultdict(list)
        async with rt.db.read() as tx:
            for row in waiting:
                resolution = None
                if row.relay is None:  # a relay's own recipients are never ours to resolve
                    resolution = await resolve(tx, row.address, delimiters=settings.recipient_delimiter)
                if resolution is not None and resolution.status != "not_local":
                    local.append((row, resolution))
                else:
                    by_hop[row.relay].append(row)
        if local:
            results = await ingest(
                rt,
                raw,
                mail_from=mail_from,
                recipients=[res for _, res in local],
                source="submission",
                # Our own mail (a DSN, an auto-reply) handed from the queue to a mailbox.
                options=IngestOptions(arrival=Arrival("local", helo=settings.hostname)),
            )
            for (row, _), result in zip(local, results, strict=True):
                outcomes[row.id] = (transport.Outcome(result.code, result.reply), None)
        for relay, group in by_hop.items():
            try:
                hop = transport.hop_for(relay, settings)
            except transport.NoRoute as exc:
                code, enhanced = (554, "5.4.4") if settings.relay_missing == "bounce" else (451, "4.4.4")
                for row in group:
                    outcomes[row.id] = (transport.Outcome(code, f"{code} {enhanced} {exc}"), None)
                continue
            sent = await transport.send(
                hop,
                mail_from=mail_from,
                recipients=[r.address for r in group],
                raw=raw,
                local_hostname=settings.hostname,
                smtp_timeout=settings.relay_timeout_seconds,
            )
            for row in group:
                outcomes[row.id] = (sent[row.address], hop.host)
        return outcomes

    async def _record(
        self,
        entry: QueuedMessage,
        waiting: list[QueuedRecipient],
        outcomes: dict[int, tuple[transport.Outcome, str | None]],
        raw: bytes | None,
    ) -> None:
        rt, settings = self.rt, self.rt.settings
        now = rt.clock.now()
        attempts = entry.attempts + 1
        expired = now - entry.created_at >= timedelta(seconds=settings.queue_max_age_seconds)
        failed: list[FailedRecipient] = []
        deferred = 0
        updates: list[tuple[int, str, int | None, str]] = []
        for row in waiting:
            outcome, remote = outcomes[row.id]
            if outcome.delivered:
                updates.append((row.id, "delivered", outcome.code, outcome.reply))
            elif outcome.permanent or expired:
                reply = outcome.reply
                if not outcome.permanent:
                    days = settings.queue_max_age_seconds / 86400
                    reply = f"{reply} (gave up after {days:g} days in the queue)"
                updates.append((row.id, "failed", outcome.code, reply))
                failed.append(FailedRecipient(row.address, outcome.code, outcome.reply, remote))
            else:
                deferred += 1
                updates.append((row.id, "deferred", outcome.code, outcome.reply))
        dsn = self._dsn(entry, failed, raw) if failed else None
        dsn_sha = await rt.blobs.put(dsn[1]) if dsn else None
        last_error = next((u[3] for u in updates if u[1] != "delivered"), None)
        async with rt.db.write(durable=True) as tx:
            for recipient_id, status, code, reply in updates:
                await store.set_recipient(
                    tx, recipient_id, status=status, code=code, reply=reply, now=now, attempted=True
                )
            if deferred:
                await store.reschedule(
                    tx,
                    entry.id,
                    attempts=attempts,
                    next_attempt_at=now + backoff(settings, attempts),
                    error=last_error,
                    now=now,
                )
            else:
                await store.finish(tx, entry.id, attempts=attempts, error=last_error, now=now)
            if dsn is not None and dsn_sha is not None:
                to, message = dsn
                await store_queued(
                    tx, rt, message, dsn_sha, source="dsn", mail_from="", recipients=[NewRecipient(to)]
                )
        if failed:
            log.info("queue entry %s: %d recipient(s) failed", entry.id, len(failed))
        await announce_status(rt, entry, waiting, updates)

    def _dsn(
        self, entry: QueuedMessage, failed: list[FailedRecipient], raw: bytes | None
    ) -> tuple[str, bytes] | None:
        """(recipient, bytes) of the bounce for ``failed``; None for the null sender."""
        sender = entry.mail_from or ""
        if not sender:
            return None  # never bounce a bounce (or an auto-reply)
        now = self.rt.clock.now()
        if srs.is_srs(sender):
            # A forward of ours failed: tell the original sender, not our SRS address.
            original = srs.reverse(sender, self._secret, now)
            if original is None:
                log.warning("queue entry %s: undeliverable SRS sender %s, no DSN", entry.id, sender)
                return None
            sender = original
        head = split_head(raw)[0] if raw else b""
        message = build_dsn(
            original=head,
            sender=sender,
            failed=failed,
            reporting_mta=self.rt.settings.hostname,
            arrival=entry.created_at,
            now=now,
            queue_id=entry.id,
        )
        return sender, message
