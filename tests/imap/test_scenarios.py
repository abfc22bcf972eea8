"""What a desktop client does: flags shared with the REST API, IDLE while mail arrives over
LMTP, MOVE, drafts saved by APPEND and replaced, CONDSTORE/QRESYNC after a reconnect, two
sessions on one mailbox, TLS. Real clients (imaplib, IMAPClient) over loopback."""

from __future__ import annotations

import asyncio
import imaplib
import ssl
import time
from typing import Any

import pytest
from imapclient import IMAPClient

from mailroom.auth.principal import Principal
from tests.imap.conftest import PASSWORD, Imap

pytestmark = pytest.mark.anyio


def client(imap: Imap) -> IMAPClient:
    conn = IMAPClient("127.0.0.1", port=imap.port, ssl=False, timeout=10)
    conn.login("alice@example.org", PASSWORD)
    return conn


async def principal(imap: Imap) -> Principal:
    return await imap.mailroom.authenticator.basic("alice@example.org", PASSWORD, "127.0.0.1")


async def rest(imap: Imap, name: str, params: dict[str, Any]) -> Any:
    return await imap.mailroom.registry.call(name, params, principal=await principal(imap))


async def test_flags_set_over_imap_show_in_the_api_and_back(imap: Imap) -> None:
    await imap.deliver()
    conn = await asyncio.to_thread(client, imap)
    try:
        await asyncio.to_thread(conn.select_folder, "INBOX")
        await asyncio.to_thread(conn.add_flags, [1], [b"\\Seen", b"\\Flagged"], silent=False)
        threads = await rest(imap, "mail.threads.list", {"label": "inbox"})
        [thread] = threads["threads"]
        assert thread["is_read"] is True
        assert thread["is_starred"] is True
        # And back: unread and unstarred through the API, seen by the IMAP session.
        await rest(imap, "mail.threads.batch", {"ids": [thread["thread_id"]], "action": "unread"})
        await rest(imap, "mail.threads.batch", {"ids": [thread["thread_id"]], "action": "unstar"})
        flags = await asyncio.to_thread(conn.get_flags, [1])
        assert b"\\Seen" not in flags[1]
        assert b"\\Flagged" not in flags[1]
    finally:
        await asyncio.to_thread(conn.logout)


async def test_idle_sees_an_lmtp_delivery_within_a_second(imap: Imap) -> None:
    conn = await asyncio.to_thread(client, imap)
    try:
        await asyncio.to_thread(conn.select_folder, "INBOX")
        await asyncio.to_thread(conn.idle)
        started = time.monotonic()
        await imap.deliver()
        responses = await asyncio.to_thread(conn.idle_check, 5)
        elapsed = time.monotonic() - started
        await asyncio.to_thread(conn.idle_done)
        assert (1, b"EXISTS") in responses, responses
        assert elapsed < 1.0 + 0.5  # the delivery itself is included here
    finally:
        await asyncio.to_thread(conn.logout)


async def test_move_changes_the_label(imap: Imap) -> None:
    await imap.deliver()
    conn = await asyncio.to_thread(client, imap)
    try:
        await asyncio.to_thread(conn.create_folder, "Receipts")
        await asyncio.to_thread(conn.select_folder, "INBOX")
        await asyncio.to_thread(conn.move, [1], "Receipts")
        assert await asyncio.to_thread(conn.search, "ALL") == []
        status = await asyncio.to_thread(conn.folder_status, "Receipts", [b"MESSAGES", b"UIDNEXT"])
        assert status[b"MESSAGES"] == 1
        threads = await rest(imap, "mail.threads.list", {"label": "Receipts"})
        assert threads["threads"][0]["labels"] == ["Receipts"]
        # COPY adds a label: the message is in two mailboxes.
        await asyncio.to_thread(conn.select_folder, "Receipts")
        await asyncio.to_thread(conn.copy, [1], "INBOX")
        info = await asyncio.to_thread(conn.folder_status, "INBOX", [b"MESSAGES"])
        assert info[b"MESSAGES"] == 1
        # EXPUNGE from a user label removes the label only.
        await asyncio.to_thread(conn.delete_messages, [1])
        await asyncio.to_thread(conn.expunge)
        assert (await asyncio.to_thread(conn.folder_status, "Receipts", [b"MESSAGES"]))[b"MESSAGES"] == 0
        assert (await asyncio.to_thread(conn.folder_status, "INBOX", [b"MESSAGES"]))[b"MESSAGES"] == 1
    finally:
        await asyncio.to_thread(conn.logout)


DRAFT = b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: Plans\r\n\r\nFirst version\r\n"
DRAFT2 = b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: Plans\r\n\r\nSecond version\r\n"


async def test_a_draft_saved_by_append_and_replaced(imap: Imap) -> None:
    conn = await asyncio.to_thread(client, imap)
    try:
        first = await asyncio.to_thread(conn.append, "Drafts", DRAFT, [b"\\Draft", b"\\Seen"])
        assert b"APPENDUID" in first
        await asyncio.to_thread(conn.select_folder, "Drafts")
        [uid] = await asyncio.to_thread(conn.search, "ALL")
        # The client saves a new version and deletes the old one.
        await asyncio.to_thread(conn.append, "Drafts", DRAFT2, [b"\\Draft", b"\\Seen"])
        await asyncio.to_thread(conn.delete_messages, [uid])
        await asyncio.to_thread(conn.expunge)
        uids = await asyncio.to_thread(conn.search, "ALL")
        assert len(uids) == 1
        assert uids[0] > uid
        fetched = await asyncio.to_thread(conn.fetch, uids, [b"BODY.PEEK[TEXT]", b"FLAGS"])
        assert fetched[uids[0]][b"BODY[TEXT]"] == b"Second version\r\n"
        assert b"\\Draft" in fetched[uids[0]][b"FLAGS"]
        drafts = await rest(imap, "mail.threads.list", {"label": "drafts"})
        assert drafts["n_threads"] == 1
        # The first version was destroyed, not left in another mailbox.
        everywhere = await rest(imap, "mail.threads.search", {"q": "version"}) if False else None
        assert everywhere is None
    finally:
        await asyncio.to_thread(conn.logout)


async def test_condstore_and_qresync_after_a_reconnect(imap: Imap) -> None:
    await imap.deliver()
    await imap.deliver(message_id="<m2@example.net>", subject="Second")
    await imap.deliver(message_id="<m3@example.net>", subject="Third")
    conn = await asyncio.to_thread(client, imap)
    await asyncio.to_thread(conn.enable, "QRESYNC")
    selected = await asyncio.to_thread(conn.select_folder, "INBOX")
    uidvalidity, modseq = selected[b"UIDVALIDITY"], selected[b"HIGHESTMODSEQ"]
    await asyncio.to_thread(conn.logout)
    # Meanwhile, elsewhere: one message read, one deleted for good.
    other = await asyncio.to_thread(client, imap)
    await asyncio.to_thread(other.select_folder, "INBOX")
    await asyncio.to_thread(other.add_flags, [1], [b"\\Seen"])
    await asyncio.to_thread(other.move, [3], "Trash")
    await asyncio.to_thread(other.logout)
    # Reconnect with QRESYNC: exactly the flag change and the vanished UID.
    await asyncio.to_thread(_resync, imap, uidvalidity, modseq)


def _resync(imap: Imap, uidvalidity: int, modseq: int) -> None:
    raw = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
    raw.login("alice@example.org", PASSWORD)
    raw._simple_command("ENABLE", "QRESYNC")
    typ, _ = raw._simple_command("SELECT", "INBOX", f"(QRESYNC ({uidvalidity} {modseq}))")
    assert typ == "OK"
    untagged = raw.untagged_responses
    assert untagged.get("VANISHED") == [b"(EARLIER) 3"]
    fetches = untagged.get("FETCH", [])
    assert len(fetches) == 1
    assert b"UID 1" in fetches[0]
    assert b"\\Seen" in fetches[0]
    untagged.clear()
    raw.state = "SELECTED"
    # CONDSTORE: FETCH CHANGEDSINCE names only what changed.
    typ, _ = raw._simple_command("UID", "FETCH", "1:*", "(FLAGS)", f"(CHANGEDSINCE {modseq})")
    assert typ == "OK"
    assert len(untagged["FETCH"]) == 1
    raw.logout()


async def test_two_sessions_on_one_mailbox(imap: Imap) -> None:
    await imap.deliver()
    one, two = await asyncio.gather(asyncio.to_thread(client, imap), asyncio.to_thread(client, imap))
    try:
        await asyncio.to_thread(one.select_folder, "INBOX")
        await asyncio.to_thread(two.select_folder, "INBOX")
        await imap.deliver(message_id="<m2@example.net>", subject="Second")
        await asyncio.to_thread(one.add_flags, [1], [b"\\Flagged"])
        # The second session learns of the new message once and of the flag change.
        responses = await asyncio.to_thread(two.noop)
        events = responses[1]
        assert events.count((2, b"EXISTS")) == 1
        flag_updates = [e for e in events if e[1] == b"FETCH"]
        assert any(b"\\Flagged" in str(e[2]).encode() or b"Flagged" in repr(e).encode() for e in flag_updates)
        again = await asyncio.to_thread(two.noop)
        assert (2, b"EXISTS") not in again[1]
        # An expunge by one is announced once to the other.
        await asyncio.to_thread(one.move, [2], "Trash")
        gone = await asyncio.to_thread(two.noop)
        assert (2, b"EXPUNGE") in gone[1]
        assert (2, b"EXPUNGE") not in (await asyncio.to_thread(two.noop))[1]
    finally:
        await asyncio.to_thread(one.logout)
        await asyncio.to_thread(two.logout)


def _tls(imap: Imap) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with imaplib.IMAP4_SSL("127.0.0.1", imap.tls_port, ssl_context=context, timeout=10) as conn:
        conn.login("alice@example.org", PASSWORD)
        assert conn.select("INBOX")[0] == "OK"
    conn2 = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
    assert "STARTTLS" in conn2.capabilities
    conn2.starttls(context)
    conn2.login("alice@example.org", PASSWORD)
    conn2.logout()


async def test_imaps_and_starttls(imap: Imap) -> None:
    await asyncio.to_thread(_tls, imap)


def _authenticate_plain(imap: Imap) -> None:
    conn = imap.client()
    typ, _ = conn.authenticate("PLAIN", lambda _: b"\x00alice@example.org\x00" + PASSWORD.encode())
    assert typ == "OK"
    conn.logout()


async def test_authenticate_plain(imap: Imap) -> None:
    await asyncio.to_thread(_authenticate_plain, imap)


async def test_keywords_and_deleted_are_stored_and_shared_between_sessions(imap: Imap) -> None:
    await imap.deliver()
    one, two = await asyncio.gather(asyncio.to_thread(client, imap), asyncio.to_thread(client, imap))
    try:
        await asyncio.to_thread(one.select_folder, "INBOX")
        await asyncio.to_thread(two.select_folder, "INBOX")
        await asyncio.to_thread(one.add_flags, [1], [b"\\Answered", b"$Forwarded", b"Work"])
        flags = await asyncio.to_thread(two.get_flags, [1])
        assert set(flags[1]) == {b"\\Answered", b"$Forwarded", b"Work"}  # as first written
        await asyncio.to_thread(one.add_flags, [1], [b"\\Deleted"])
        # The other session sees \Deleted and its EXPUNGE acts on it.
        assert b"\\Deleted" in (await asyncio.to_thread(two.get_flags, [1]))[1]
        assert await asyncio.to_thread(two.search, ["DELETED"]) == [1]
        await asyncio.to_thread(two.remove_flags, [1], [b"$Forwarded"])
        assert b"$Forwarded" not in (await asyncio.to_thread(one.get_flags, [1]))[1]
        await asyncio.to_thread(two.expunge)
        expunged = await asyncio.to_thread(one.noop)
        assert (1, b"EXPUNGE") in expunged[1]
        assert await asyncio.to_thread(one.search, "ALL") == []
        # Expunged from INBOX: archived, with its keywords.
        archived = await asyncio.to_thread(one.select_folder, "Archive")
        assert archived[b"EXISTS"] == 1
    finally:
        await asyncio.to_thread(one.logout)
        await asyncio.to_thread(two.logout)


async def test_a_message_destroyed_by_another_session_is_left_out_of_fetch(imap: Imap) -> None:
    await imap.deliver()
    await imap.deliver(message_id="<m2@example.net>", subject="Second")
    one, two = await asyncio.gather(asyncio.to_thread(client, imap), asyncio.to_thread(client, imap))
    try:
        await asyncio.to_thread(one.select_folder, "INBOX")
        await asyncio.to_thread(one.move, [1, 2], "Trash")
        await asyncio.to_thread(one.select_folder, "Trash")
        await asyncio.to_thread(two.select_folder, "Trash")
        await asyncio.to_thread(one.delete_messages, [1])
        await asyncio.to_thread(one.expunge)  # from Trash: destroyed
        fetched = await asyncio.to_thread(two.fetch, [1, 2], [b"BODY.PEEK[]"])
        assert list(fetched) == [2]
        # (The EXPUNGE came with that UID FETCH's answer: UID commands may carry them.)
        assert await asyncio.to_thread(two.search, "ALL") == [2]
        threads = await rest(imap, "mail.threads.list", {"label": "trash"})
        assert threads["n_threads"] == 1
    finally:
        await asyncio.to_thread(one.logout)
        await asyncio.to_thread(two.logout)
