"""The ingest operation: stored once, deduplicated, labelled, quota, intents, failures."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.mailhelpers import create_user, message

from mailroom import bootstrap
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.delivery import ingest as ingest_module
from mailroom.delivery.ingest import IngestOptions, RecipientResult, ingest
from mailroom.delivery.resolve import resolve
from mailroom.settings import Settings
from mailroom.store import emails as email_store
from mailroom.store import intents as intent_store
from mailroom.store.emails import StoredEmail
from mailroom.store.mail_schema import blobs, emails, outbound_intents
from mailroom.store.schema import users

pytestmark = pytest.mark.anyio

Call = Callable[..., Awaitable[Any]]


async def deliver(
    mailroom: Mailroom, raw: bytes, *rcpts: str, mail_from: str = "bob@example.net", **options: Any
) -> list[RecipientResult]:
    async with mailroom.runtime.db.read() as tx:
        resolved = [await resolve(tx, r) for r in rcpts]
    opts = IngestOptions(**options) if options else None
    return await ingest(
        mailroom.runtime, raw, mail_from=mail_from, recipients=resolved, source="lmtp", options=opts
    )


async def scalar(mailroom: Mailroom, stmt: Any) -> Any:
    async with mailroom.runtime.db.read() as tx:
        return await tx.scalar(stmt)


async def email_of(mailroom: Mailroom, user_id: int, email_id: int) -> StoredEmail:
    async with mailroom.runtime.db.read() as tx:
        row = await email_store.get(tx, user_id, email_id)
    assert row is not None
    return row


async def used(mailroom: Mailroom, user_id: int) -> int:
    return int(await scalar(mailroom, select(users.c.quota_bytes_used).where(users.c.id == user_id)))


async def test_a_message_for_several_mailboxes_is_one_blob_and_one_row_each(
    mailroom: Mailroom, call: Call
) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    carol = await create_user(mailroom, "carol@example.org")
    raw = message()
    results = await deliver(mailroom, raw, "alice@example.org", "carol@example.org")
    assert [r.code for r in results] == [250, 250]
    a, c = results[0].email_ids[0], results[1].email_ids[0]
    row_a, row_c = await email_of(mailroom, alice, a), await email_of(mailroom, carol, c)
    assert row_a.blob_sha == row_c.blob_sha
    assert await scalar(mailroom, select(func.count()).select_from(blobs)) == 1
    files = [p for p in mailroom.runtime.blobs.root.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [row_a.blob_sha]
    assert await mailroom.runtime.blobs.get(row_a.blob_sha) == raw
    assert row_a.labels == ("inbox",)
    assert row_a.subject == "Hello"
    assert row_a.from_addrs == [{"name": "Bob", "email": "bob@example.net"}]
    # The stored message is each mailbox's trace headers, then the shared blob.
    assert row_a.trace.startswith("Return-Path: <bob@example.net>\r\nDelivered-To: alice@example.org\r\n")
    assert "Delivered-To: carol@example.org\r\n" in row_c.trace
    assert row_a.size == len(raw) + len(row_a.trace)
    assert await used(mailroom, alice) == row_a.size


async def test_a_resent_message_is_not_stored_twice(mailroom: Mailroom, call: Call) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    raw = message()
    [first] = await deliver(mailroom, raw, "alice@example.org")
    [again] = await deliver(mailroom, raw, "alice@example.org")
    assert again.code == 250
    assert again.duplicate
    assert not first.duplicate
    assert again.email_ids == first.email_ids
    assert await scalar(mailroom, select(func.count()).select_from(emails)) == 1
    size = await scalar(mailroom, select(emails.c.size))
    assert await used(mailroom, alice) == size
    # Same Message-ID, different bytes (another copy of the mail): a different delivery.
    [other] = await deliver(mailroom, message(body="Another text.\r\n"), "alice@example.org")
    assert other.email_ids != first.email_ids


async def test_the_same_mailbox_reached_twice_gets_one_copy(mailroom: Mailroom, call: Call) -> None:
    await create_user(mailroom, "alice@example.org")
    await call(
        "admin.aliases.create",
        {"alias": {"address": "info@example.org", "destinations": ["alice@example.org"]}},
    )
    results = await deliver(mailroom, message(), "alice@example.org", "info@example.org")
    assert [r.code for r in results] == [250, 250]
    assert results[0].email_ids == results[1].email_ids
    assert await scalar(mailroom, select(func.count()).select_from(emails)) == 1


async def test_over_quota_is_a_temporary_failure_and_stores_nothing(mailroom: Mailroom, call: Call) -> None:
    alice = await create_user(mailroom, "alice@example.org", quota_bytes=3000)
    carol = await create_user(mailroom, "carol@example.org")
    [ok] = await deliver(mailroom, message(message_id="<small@x>", pad_to=1000), "alice@example.org")
    assert ok.code == 250
    big = message(message_id="<big@x>", pad_to=2500)
    full, other = await deliver(mailroom, big, "alice@example.org", "carol@example.org")
    assert full.reply.startswith("452 4.2.2 <alice@example.org>")
    assert full.temporary
    assert not full.email_ids
    assert other.code == 250
    assert await used(mailroom, alice) < 3000
    stored = await scalar(mailroom, select(emails.c.size).where(emails.c.user_id == carol))
    assert stored > len(big)  # the trace headers count as part of the message
    assert await used(mailroom, carol) == stored


async def test_quota_follows_deletes(mailroom: Mailroom, call: Call) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    r1, r2 = [
        (await deliver(mailroom, message(message_id=f"<{i}@x>", pad_to=2000 * i), "alice@example.org"))[0]
        for i in (1, 2)
    ]
    total = await used(mailroom, alice)
    async with mailroom.runtime.db.write() as tx:
        deleted = await email_store.delete_emails(tx, alice, [r1.email_ids[0]])
    assert [d.id for d in deleted] == list(r1.email_ids)
    assert await used(mailroom, alice) == total - deleted[0].size
    async with mailroom.runtime.db.write() as tx:
        assert await email_store.recount_quota(tx, alice) == await used(mailroom, alice)
        assert await email_store.delete_emails(tx, alice + 99, [r2.email_ids[0]]) == []  # not theirs


async def test_too_big_is_552_for_every_recipient(mailroom: Mailroom, call: Call) -> None:
    await create_user(mailroom, "alice@example.org")
    mailroom.runtime.settings = mailroom.runtime.settings.model_copy(update={"max_message_bytes": 2048})
    results = await deliver(mailroom, message(pad_to=5000), "alice@example.org", "nobody@example.org")
    assert results[0].reply.startswith("552 5.3.4 ")
    assert results[1].reply.startswith("552 5.3.4 ")
    assert await scalar(mailroom, select(func.count()).select_from(emails)) == 0


async def test_an_internal_error_is_451_never_5xx(
    mailroom: Mailroom, call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_user(mailroom, "alice@example.org")

    async def broken(data: bytes, sha: str | None = None) -> str:
        raise OSError("disk on fire")

    monkeypatch.setattr(mailroom.runtime.blobs, "put", broken)
    [result] = await deliver(mailroom, message(), "alice@example.org")
    assert result.reply.startswith("451 4.3.0 <alice@example.org>")
    assert await scalar(mailroom, select(func.count()).select_from(emails)) == 0


async def test_a_blob_that_fails_to_reach_the_disk_fails_only_its_own_delivery(
    mailroom: Mailroom, call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_user(mailroom, "alice@example.org")
    good, bad = message(subject="good"), message(subject="bad")
    put = mailroom.runtime.blobs.put

    async def failing_for_bad(data: bytes, sha: str | None = None) -> str:
        if data == bad:
            await asyncio.sleep(0.01)  # fails while its rows are being written
            raise OSError("disk on fire")
        return await put(data, sha)

    monkeypatch.setattr(mailroom.runtime.blobs, "put", failing_for_bad)
    # Delivered together, so that they share one transaction (group commit).
    results = await asyncio.gather(
        deliver(mailroom, bad, "alice@example.org"), deliver(mailroom, good, "alice@example.org")
    )
    assert [r.code for [r] in results] == [451, 250]
    rows = await scalar(mailroom, select(func.count()).select_from(emails))
    assert rows == 1
    assert await scalar(mailroom, select(emails.c.subject)) == "good"


async def test_ingest_inside_a_unit_of_work_commits_on_its_own(mailroom: Mailroom, call: Call) -> None:
    """The committer never joins the unit of work of the caller that happened to wake it."""
    await create_user(mailroom, "alice@example.org")

    async def count() -> Any:
        return await scalar(mailroom, select(func.count()).select_from(emails))

    async with mailroom.runtime.db.unit_of_work() as unit:
        [result] = await deliver(mailroom, message(), "alice@example.org")
        assert result.code == 250
        assert not unit.wrote
        # Seen from outside the unit (a context of its own): committed already, as the 250 says.
        assert await asyncio.get_running_loop().create_task(count(), context=contextvars.Context()) == 1


async def test_unresolved_recipients_keep_their_refusal(mailroom: Mailroom, call: Call) -> None:
    await create_user(mailroom, "alice@example.org")
    results = await deliver(mailroom, message(), "nobody@example.org", "alice@example.org")
    assert results[0].reply.startswith("550 5.1.1 ")
    assert results[1].code == 250


@pytest.mark.parametrize(
    ("headers", "fields", "label", "read"),
    [
        ({"X-Spam-Flag": "YES"}, {}, "spam", False),
        ({"X-Spam-Flag": "YES"}, {"spam_enabled": False}, "inbox", False),
        ({"X-Spam-Score": "7.5"}, {}, "spam", False),
        ({"X-Rspamd-Score": "12.1"}, {"spam_threshold": 15}, "inbox", False),
        ({"X-Spam-Flag": "YES", "X-Spam-Score": "6"}, {"spam_threshold": 8}, "inbox", False),
        ({"X-Spam-Score": "5"}, {"spam_mark_as_read": True}, "spam", True),
        ({"X-Spam-Flag": "NO", "X-Spam-Score": "-1.2"}, {}, "inbox", False),
    ],
)
async def test_spam_headers_against_the_mailbox_settings(
    mailroom: Mailroom, call: Call, headers: dict[str, str], fields: dict[str, Any], label: str, read: bool
) -> None:
    alice = await create_user(mailroom, "alice@example.org", **fields)
    [r] = await deliver(mailroom, message(headers=headers), "alice@example.org")
    row = await email_of(mailroom, alice, r.email_ids[0])
    assert row.labels == (label,)
    assert row.is_read is read


async def test_import_options_give_labels_flags_and_arrival_time(
    mailroom: Mailroom, call: Call, clock: FakeClock
) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    when = clock.now() - timedelta(days=400)
    [r] = await deliver(
        mailroom,
        message(headers={"X-Spam-Flag": "YES"}),
        "alice@example.org",
        labels=("archive", "Projects"),
        is_read=True,
        is_starred=True,
        received_at=when,
    )
    row = await email_of(mailroom, alice, r.email_ids[0])
    assert row.labels == ("Projects", "archive", "starred")
    assert row.is_read is True
    assert row.is_starred is True
    assert row.received_at == when


async def test_openpgp_encryption_is_recorded(mailroom: Mailroom, call: Call) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    armoured = "-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA3xyz\r\n-----END PGP MESSAGE-----\r\n"
    [r] = await deliver(mailroom, message(body=armoured), "alice@example.org")
    row = await email_of(mailroom, alice, r.email_ids[0])
    assert row.encryption == "encrypted"


async def _intents(mailroom: Mailroom) -> list[dict[str, Any]]:
    async with mailroom.runtime.db.read() as tx:
        return await tx.all(select(outbound_intents).order_by(outbound_intents.c.id))


async def test_forwards_alias_destinations_and_relays_become_intents_once(
    mailroom: Mailroom, call: Call
) -> None:
    await create_user(
        mailroom, "dave@example.org", forward_enabled=True, forward_destinations=["dave@elsewhere.net"]
    )
    await call(
        "admin.aliases.create", {"alias": {"address": "ext@example.org", "destinations": ["x@other.net"]}}
    )
    await call("admin.relays.create", {"relay": {"name": "relayed.net", "smarthost": "mx.relayed.net"}})
    raw = message()
    rcpts = ("dave@example.org", "ext@example.org", "someone@relayed.net")
    results = await deliver(mailroom, raw, *rcpts)
    assert [r.code for r in results] == [250, 250, 250]
    assert [bool(r.email_ids) for r in results] == [True, False, False]
    again = await deliver(mailroom, raw, *rcpts)
    assert [r.code for r in again] == [250, 250, 250]
    found = await _intents(mailroom)
    assert sorted((i["kind"], i["recipients"][0], i["payload"].get("via")) for i in found) == [
        ("alias", "x@other.net", "ext@example.org"),
        ("forward", "dave@elsewhere.net", "dave@example.org"),
        ("relay", "someone@relayed.net", "someone@relayed.net"),
    ]
    assert {i["blob_sha"] for i in found} == {(await _one_email(mailroom))["blob_sha"]}
    assert {i["status"] for i in found} == {"pending"}
    relay = next(i for i in found if i["kind"] == "relay")
    assert relay["relay"] == "mx.relayed.net"
    assert relay["mail_from"] == "bob@example.net"
    async with mailroom.runtime.db.read() as tx:
        assert len(await intent_store.pending(tx, mailroom.runtime.clock.now())) == 3


async def _one_email(mailroom: Mailroom) -> dict[str, Any]:
    async with mailroom.runtime.db.read() as tx:
        row = await tx.first(select(emails))
    assert row is not None
    return row


async def test_a_forward_that_comes_back_is_not_forwarded_again(mailroom: Mailroom, call: Call) -> None:
    await create_user(
        mailroom, "dave@example.org", forward_enabled=True, forward_destinations=["dave@elsewhere.net"]
    )
    await create_user(
        mailroom,
        "erin@example.org",
        forward_enabled=True,
        forward_destinations=["erin@elsewhere.net"],
        forward_keep=False,
    )
    looped = message(headers={"Delivered-To": "dave@example.org"})
    [r] = await deliver(mailroom, looped, "dave@example.org")
    assert r.code == 250
    assert r.email_ids
    assert await _intents(mailroom) == []
    looped_away = message(message_id="<e@x>", headers={"Delivered-To": "<erin@example.org>"})
    [r] = await deliver(mailroom, looped_away, "erin@example.org")
    assert r.reply.startswith("554 5.4.6 ")


async def test_too_many_hops_is_refused(mailroom: Mailroom, call: Call) -> None:
    await create_user(mailroom, "alice@example.org")
    hops = "".join(
        f"Received: from h{i}.example by h{i + 1}.example; Thu, 1 Jan 2026 10:00:00 +0000\r\n"
        for i in range(60)
    )
    [r] = await deliver(mailroom, hops.encode() + message(), "alice@example.org")
    assert r.reply.startswith("554 5.4.6 ")


async def test_auto_reply_once_per_sender_per_period(
    mailroom: Mailroom, call: Call, clock: FakeClock
) -> None:
    fields = {"reply_enabled": True, "reply_subject": "Away", "reply_body": "Back on Monday."}
    alice = await create_user(mailroom, "alice@example.org", **fields)
    await deliver(mailroom, message(message_id="<1@x>"), "alice@example.org")
    await deliver(mailroom, message(message_id="<2@x>"), "alice@example.org")
    [reply] = await _intents(mailroom)
    assert reply["kind"] == "autoreply"
    assert reply["user_id"] == alice
    assert reply["recipients"] == ["bob@example.net"]
    assert reply["blob_sha"] is None
    assert reply["payload"]["subject"] == "Away"
    assert reply["payload"]["in_reply_to"] == "1@x"
    clock.advance(days=8)
    await deliver(mailroom, message(message_id="<3@x>"), "alice@example.org")
    assert len(await _intents(mailroom)) == 2


@pytest.mark.parametrize(
    ("headers", "mail_from", "to"),
    [
        ({"Auto-Submitted": "auto-replied"}, "bob@example.net", "alice@example.org"),
        ({"Precedence": "bulk"}, "bob@example.net", "alice@example.org"),
        ({"List-Id": "<news.example.net>"}, "bob@example.net", "alice@example.org"),
        ({}, "", "alice@example.org"),
        ({}, "MAILER-DAEMON@example.net", "alice@example.org"),
        ({}, "list-request@example.net", "alice@example.org"),
        ({}, "bob@example.net", "undisclosed-recipients:;"),
        ({"X-Spam-Flag": "YES"}, "bob@example.net", "alice@example.org"),
    ],
)
async def test_no_auto_reply_to_automatic_or_indirect_mail(
    mailroom: Mailroom, call: Call, headers: dict[str, str], mail_from: str, to: str
) -> None:
    await create_user(
        mailroom, "alice@example.org", reply_enabled=True, reply_subject="Away", reply_body="..."
    )
    [r] = await deliver(mailroom, message(headers=headers, to=to), "alice@example.org", mail_from=mail_from)
    assert r.code == 250
    assert await _intents(mailroom) == []


async def test_auto_reply_respects_its_dates(mailroom: Mailroom, call: Call, clock: FakeClock) -> None:
    today = clock.now().date()
    later = today + timedelta(days=3)
    await create_user(
        mailroom, "alice@example.org", reply_enabled=True, reply_subject="Away", reply_start=later.isoformat()
    )
    await deliver(mailroom, message(), "alice@example.org")
    assert await _intents(mailroom) == []
    clock.advance(days=3)
    await deliver(mailroom, message(message_id="<later@x>"), "alice@example.org")
    assert len(await _intents(mailroom)) == 1


async def test_results_are_plain_values(mailroom: Mailroom, call: Call) -> None:
    await create_user(mailroom, "alice@example.org")
    [r] = await deliver(mailroom, message(), "alice@example.org")
    assert dataclasses.asdict(r)["address"] == "alice@example.org"
    assert r.ok
    assert not r.temporary


async def test_a_new_thread_gets_the_summary_a_refresh_would_compute(mailroom: Mailroom) -> None:
    """Ingest makes a new thread's summary, label rows and label counts from the email it
    inserted (store/threads.py ``begin_with``); recomputing them from the tables changes nothing."""
    from mailroom.store import threads as thread_store
    from mailroom.store.mail_schema import labels, thread_labels, threads

    await create_user(mailroom, "alice@example.org")
    attachment = (
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"
        "Content-Type: text/plain\r\n\r\nSee attached.\r\n--b1\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        "JVBERi0xLjQK\r\n--b1--\r\n"
    )
    plain = message(subject="Plain", sender="Bob Smith <bob@example.net>", message_id="<p1@example.net>")
    with_file = message(subject="File", message_id="<f1@example.net>", headers={"X-Pad": "1"}).replace(
        b"\r\n\r\nHello Alice", b"\r\n" + attachment.encode() + b"\r\nHello Alice", 1
    )
    reply = message(subject="Re: Plain", message_id="<p2@example.net>", in_reply_to="<p1@example.net>")
    for raw, options in (
        (plain, {}),
        (with_file, {"is_starred": True}),
        (message(subject="Read", message_id="<r1@example.net>"), {"is_read": True, "labels": ("archive",)}),
        (reply, {}),
    ):
        [result] = await deliver(mailroom, raw, "alice@example.org", **options)
        assert result.ok, result.reply

    async def snapshot() -> tuple[Any, ...]:
        async with mailroom.runtime.db.read() as tx:
            return (
                await tx.all(select(threads).order_by(threads.c.id)),
                await tx.all(
                    select(thread_labels).order_by(thread_labels.c.thread_id, thread_labels.c.label_id)
                ),
                await tx.all(select(labels).order_by(labels.c.id)),
            )

    made = await snapshot()
    assert len(made[0]) == 3  # the reply joined the first thread
    assert any(t["n_attachments"] == 1 and t["n_starred"] == 1 for t in made[0])
    async with mailroom.runtime.db.write() as tx:
        for thread in made[0]:
            await thread_store.refresh(tx, int(thread["id"]))
    assert await snapshot() == made


async def test_close_waits_for_a_delivery_s_announcement_before_closing_the_database(
    settings: Settings, clock: FakeClock
) -> None:
    """A caller has its 250 before the committer announces the delivery (the announcement
    reads the store): closing must wait for it, not close the database under it (which
    left an unclosed PostgreSQL connection to be garbage-collected in a later test)."""
    app = await bootstrap.start(settings, clock=clock, run_migrations=False)
    closing: asyncio.Task[None] | None = None
    try:
        await create_user(app, "alice@example.org")
        reading, release = asyncio.Event(), asyncio.Event()
        counted: list[int] = []

        async def slow_enricher(payloads: list[tuple[int, dict[str, Any]]]) -> None:
            reading.set()
            await release.wait()
            counted.append(await scalar(app, select(func.count()).select_from(emails)))

        app.runtime.events.add_enricher("email.received", slow_enricher)
        [result] = await deliver(app, message(), "alice@example.org")
        assert result.code == 250
        await asyncio.wait_for(reading.wait(), 30)  # hang guard
        closing = asyncio.ensure_future(app.close())
        await asyncio.sleep(0.1)
        assert not closing.done()  # waiting for the announcement
        release.set()
        await asyncio.wait_for(closing, 30)  # hang guard
        assert counted == [1]  # read with the database still open
    finally:
        if closing is None:
            await app.close()


async def test_close_waits_for_a_delivery_under_way(
    settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing (after the listeners stopped) lets a delivery already accepted finish on an
    open database: its sender gets a 250 it can trust, not a 451 from a closed store."""
    app = await bootstrap.start(settings, clock=clock, run_migrations=False)
    closing: asyncio.Task[None] | None = None
    try:
        await create_user(app, "alice@example.org")
        writing, release = asyncio.Event(), asyncio.Event()
        parse = ingest_module._parse

        async def slow_parse(raw: bytes) -> Any:
            # Held before the delivery reaches the committer (whose drain covers the rest).
            writing.set()
            await release.wait()
            return await parse(raw)

        monkeypatch.setattr(ingest_module, "_parse", slow_parse)
        delivering = asyncio.ensure_future(deliver(app, message(), "alice@example.org"))
        closed_during_delivery: list[bool] = []
        close_db = app.runtime.db.close

        async def recording_close() -> None:
            closed_during_delivery.append(not delivering.done())
            await close_db()

        monkeypatch.setattr(app.runtime.db, "close", recording_close)
        await asyncio.wait_for(writing.wait(), 30)  # hang guard
        closing = asyncio.ensure_future(app.close())
        await asyncio.sleep(0.1)
        assert not closing.done()  # waiting for the delivery
        release.set()
        [result] = await asyncio.wait_for(delivering, 30)  # hang guard
        assert result.code == 250, result.reply
        await asyncio.wait_for(closing, 30)  # hang guard
        assert closed_during_delivery == [False]
    finally:
        if closing is None:
            await app.close()


async def test_statements_per_delivery(mailroom: Mailroom, call: Call) -> None:
    """The SQL a delivery runs, counted on SQLite's connection. Trigger bodies are left out:
    they run inside the statement that fires them, and Python's trace callback reports them
    as a "-- TRIGGER" line and the firing statement again. Raise the bounds only with a
    reason: each statement is a driver call on the ingest path (docs/performance.md)."""
    if mailroom.runtime.db.dialect != "sqlite":
        pytest.skip("counted on SQLite's connection")
    await create_user(mailroom, "alice@example.org")
    await create_user(mailroom, "carol@example.org")
    await deliver(mailroom, message(message_id="<warm@x>"), "alice@example.org", "carol@example.org")
    async with mailroom.runtime.db.write() as tx:
        raw = tx._conn.connection.dbapi_connection  # type: ignore[attr-defined]
    seen: list[str] = []
    raw.set_trace_callback(seen.append)
    try:
        one = await deliver(mailroom, message(message_id="<a@x>"), "alice@example.org")
        top_one = _top_level(seen)
        seen.clear()
        two = await deliver(mailroom, message(message_id="<b@x>"), "alice@example.org", "carol@example.org")
        top_two = _top_level(seen)
    finally:
        raw.set_trace_callback(None)
    assert [r.ok for r in [*one, *two]] == [True, True, True]
    # BEGIN, COMMIT, the writer's busy timeout set and reset, the blob row; then per mailbox:
    # the user, dedup, labels, thread look-up, thread, thread id, email, email label,
    # thread summary, thread label, label counts, index, quota, state.
    assert not any(s.startswith("DELETE FROM email_fts") for s in top_one)  # a new email
    per_message, per_mailbox = 5, 14
    assert len(top_one) <= per_message + per_mailbox, top_one
    assert len(top_two) <= per_message + 2 * per_mailbox, top_two


def _top_level(trace: list[str]) -> list[str]:
    out: list[str] = []
    for statement in trace:
        if not statement.startswith("--") and not (out and statement == out[-1]):
            out.append(statement)
    return out
