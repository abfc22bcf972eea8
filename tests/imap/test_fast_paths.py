"""FETCH BODY[] served from the stored bytes without the structure, and the push of IMAP flag
changes whose summaries and label counts are read only for a listening client."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from mailroom.frontends.imap import _commands
from mailroom.store.schema import users
from tests.imap.conftest import Imap
from tests.imap.test_snapshots import Raw, fetched, session

pytestmark = pytest.mark.anyio


def literal_of(lines: list[bytes]) -> bytes:
    """The bytes of the single literal in a FETCH answer read line by line."""
    joined = b"".join(lines)
    head, _, rest = joined.partition(b"}\r\n")
    size = int(head.rpartition(b"{")[2])
    return rest[:size]


def _whole(imap: Imap) -> None:
    raw: Raw = session(imap)
    raw.command("SELECT INBOX")
    whole = literal_of(raw.command("UID FETCH 1 BODY.PEEK[]"))
    header = literal_of(raw.command("UID FETCH 1 BODY.PEEK[HEADER]"))
    text = literal_of(raw.command("UID FETCH 1 BODY.PEEK[TEXT]"))
    assert whole == header + text  # the structure's sections add up to the whole message
    assert b"Subject: Hello\r\n" in whole
    # A partial: octets from the origin, labelled with it.
    answer = b"".join(raw.command("UID FETCH 1 BODY.PEEK[]<5.10>"))
    assert b"BODY[]<5> {10}\r\n" + whole[5:15] in answer
    assert b"BODY[]<100000> {0}\r\n" in b"".join(raw.command("UID FETCH 1 BODY.PEEK[]<100000.10>"))
    assert b"\\Seen" not in b"".join(fetched(raw.command("UID FETCH 1 (FLAGS)")))
    # BODY[] (not PEEK) sets \Seen and says so.
    answer = b"".join(raw.command("UID FETCH 1 BODY[]"))
    assert b"BODY[] {%d}\r\n" % len(whole) + whole in answer
    assert b"\\Seen" in answer
    assert b"\\Seen" in b"".join(fetched(raw.command("UID FETCH 1 (FLAGS)")))
    raw.close()


async def test_body_of_the_whole_message_is_the_stored_bytes(
    imap: Imap, monkeypatch: pytest.MonkeyPatch
) -> None:
    await imap.deliver()
    read: list[list[int]] = []
    real = _commands.Commands._structures

    async def counting(self: _commands.Commands, email_ids: list[int]) -> object:
        read.append(email_ids)
        return await real(self, email_ids)

    monkeypatch.setattr(_commands.Commands, "_structures", counting)
    await asyncio.to_thread(_whole, imap)
    # Only the HEADER and TEXT sections needed the stored structure; BODY[] never did.
    assert len(read) == 2


async def _user_id(imap: Imap) -> int:
    async with imap.mailroom.runtime.db.read() as tx:
        return int(await tx.scalar(select(users.c.id).where(users.c.email == "alice@example.org")))


async def test_a_flag_change_is_pushed_with_summaries_to_listeners_and_on_replay(imap: Imap) -> None:
    await imap.deliver()
    events = imap.mailroom.runtime.events
    user_id = await _user_id(imap)
    raw = await asyncio.to_thread(session, imap)
    await asyncio.to_thread(raw.command, "SELECT INBOX")
    sub = await events.subscribe(user_id)
    try:
        await asyncio.to_thread(raw.command, "UID STORE 1 +FLAGS.SILENT (\\Flagged)")
        got = [await asyncio.wait_for(sub.__anext__(), 5) for _ in range(2)]
    finally:
        await sub.aclose()
    updated, counts = got
    assert [updated.type, counts.type] == ["thread.updated", "label.counts"]
    [summary] = updated.data["threads"]
    assert summary["thread_id"] == updated.data["thread_ids"][0]
    assert updated.data["deleted"] == []
    assert {label["name"] for label in counts.data["labels"]} >= {"inbox", "starred"}
    # Nobody listening: published without them, added when a client replays the events.
    await asyncio.to_thread(raw.command, "UID STORE 1 -FLAGS.SILENT (\\Flagged)")
    again = await events.subscribe(user_id, last_event_id=counts.id)
    try:
        replayed = [await asyncio.wait_for(again.__anext__(), 5) for _ in range(2)]
    finally:
        await again.aclose()
    assert [e.type for e in replayed] == ["thread.updated", "label.counts"]
    assert replayed[0].data["threads"][0]["thread_id"] == summary["thread_id"]
    starred = [label for label in replayed[1].data["labels"] if label["name"] == "starred"]
    assert all(label["emails_total"] == 0 for label in starred)
    await asyncio.to_thread(raw.close)
