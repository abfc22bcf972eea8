"""The worker's kept mailbox snapshots (frontends/imap/_snapshots.py) and the whole-mailbox
FETCH answers rendered from them: a reconnect reuses them only while nothing changed, and
what they answer is byte for byte what a session that builds its answer line by line says."""

from __future__ import annotations

import asyncio
import socket

import pytest

from mailroom.frontends.imap import _snapshots
from mailroom.frontends.imap._mailbox import Message, Messages, Snapshot
from tests.imap.conftest import PASSWORD, Imap

pytestmark = pytest.mark.anyio


class Raw:
    """A line-level IMAP client: the exact bytes of each answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.n = 0
        assert self.file.readline().startswith(b"* OK")

    def command(self, text: str) -> list[bytes]:
        self.n += 1
        tag = b"t%d" % self.n
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        lines: list[bytes] = []
        while True:
            line = self.file.readline()
            assert line, "connection closed"
            if line.startswith(tag + b" "):
                assert line.startswith(tag + b" OK"), line
                return lines
            lines.append(line)

    def close(self) -> None:
        self.command("LOGOUT")
        self.file.close()
        self.sock.close()


def session(imap: Imap, *, rev2: bool = False) -> Raw:
    raw = Raw(imap.port)
    raw.command(f'LOGIN "alice@example.org" "{PASSWORD}"')
    if rev2:
        raw.command("ENABLE IMAP4rev2")
    return raw


def fetched(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if b" FETCH " in line]


def kept(imap: Imap) -> list[Snapshot]:
    return list(_snapshots.cache_of(imap.mailroom.runtime.db).values())


def _reconnects(imap: Imap) -> None:
    first = session(imap, rev2=True)
    first.command("SELECT INBOX")
    answer = fetched(first.command("UID FETCH 1:* (FLAGS)"))
    assert len(answer) == 3
    [snapshot] = kept(imap)
    assert ("UID", "FLAGS") in snapshot.rendered

    # A second session on the unchanged mailbox: the same snapshot, the same bytes.
    second = session(imap, rev2=True)
    second.command("SELECT INBOX")
    assert fetched(second.command("UID FETCH 1:* (FLAGS)")) == answer
    assert kept(imap) == [snapshot]
    assert kept(imap)[0] is snapshot

    # Another session changes flags and keywords: the next SELECT reads the mailbox again.
    second.command("UID STORE 2 +FLAGS.SILENT (\\Flagged \\Answered Work)")
    third = session(imap, rev2=True)
    third.command("SELECT INBOX")
    changed = fetched(third.command("UID FETCH 1:* (FLAGS)"))
    assert changed != answer
    assert b"UID 2 FLAGS (\\Flagged Work \\Answered)" in changed[1]
    assert kept(imap)[0] is not snapshot

    # The first session, told of the change by its sync, builds its answer line by line
    # (its view is no longer the snapshot's): the same bytes as the new snapshot's.
    noop = first.command("NOOP")
    assert any(b"\\Flagged" in line for line in noop)
    assert fetched(first.command("UID FETCH 1:* (FLAGS)")) == changed
    for items in ("(FLAGS MODSEQ)", "(MODSEQ UID FLAGS)", "(FLAGS UID)"):
        assert fetched(first.command(f"FETCH 1:* {items}")) == fetched(third.command(f"FETCH 1:* {items}"))
    for raw in (first, second, third):
        raw.close()


async def test_a_reconnect_reuses_the_snapshot_until_another_session_changes_flags(imap: Imap) -> None:
    for n in range(3):
        await imap.deliver(message_id=f"<s{n}@example.net>", subject=f"Message {n}")
    await asyncio.to_thread(_reconnects, imap)


def _other_mailbox(imap: Imap) -> None:
    first = session(imap, rev2=True)
    first.command("SELECT INBOX")
    [snapshot] = kept(imap)
    # A change elsewhere in the account (a new draft) moves the account's MODSEQ only.
    other = session(imap, rev2=True)
    other.command("APPEND Drafts (\\Draft) {20+}\r\nSubject: x\r\n\r\nbody\r\n")
    first.command("NOOP")  # first's view moves to the new MODSEQ: not the snapshot's any more
    second = session(imap, rev2=True)
    second.command("SELECT INBOX")
    [again] = [s for s in kept(imap) if s.label_id == snapshot.label_id]
    assert again.highest_modseq > snapshot.highest_modseq
    assert again.uids is snapshot.uids  # the mailbox was not read again
    assert fetched(second.command("UID FETCH 1:* (FLAGS MODSEQ)")) == fetched(
        first.command("UID FETCH 1:* (FLAGS MODSEQ)")
    )
    for raw in (first, other, second):
        raw.close()


async def test_a_change_in_another_mailbox_keeps_the_snapshot(imap: Imap) -> None:
    await imap.deliver()
    await imap.deliver(message_id="<m2@example.net>", subject="Second")
    await asyncio.to_thread(_other_mailbox, imap)


def _expunged(imap: Imap) -> None:
    first = session(imap)
    first.command("SELECT INBOX")
    before = fetched(first.command("UID FETCH 1:* (FLAGS)"))
    assert len(before) == 2
    first.command("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    first.command("EXPUNGE")
    second = session(imap)
    lines = second.command("SELECT INBOX")
    assert b"* 1 EXISTS\r\n" in lines
    after = fetched(second.command("UID FETCH 1:* (FLAGS)"))
    assert len(after) == 1
    assert b"UID 2 " in after[0]
    first.close()
    second.close()


async def test_an_expunged_message_is_gone_from_the_next_select(imap: Imap) -> None:
    await imap.deliver()
    await imap.deliver(message_id="<m2@example.net>", subject="Second")
    await asyncio.to_thread(_expunged, imap)


def _recent(imap: Imap) -> None:
    # IMAP4rev1: the first session is told of the new messages, so they are \Recent there
    # alone; its answer is not the shared one.
    first = session(imap)
    assert b"* 2 RECENT\r\n" in first.command("SELECT INBOX")
    with_recent = fetched(first.command("FETCH 1:* (FLAGS)"))
    assert all(b"\\Recent" in line for line in with_recent)
    second = session(imap)
    assert b"* 0 RECENT\r\n" in second.command("SELECT INBOX")
    without = fetched(second.command("FETCH 1:* (FLAGS)"))
    assert not any(b"\\Recent" in line for line in without)
    assert fetched(first.command("FETCH 1:* (FLAGS)")) == with_recent
    first.close()
    second.close()


async def test_recent_is_per_session_not_from_the_shared_answer(imap: Imap) -> None:
    await imap.deliver()
    await imap.deliver(message_id="<m2@example.net>", subject="Second")
    await asyncio.to_thread(_recent, imap)


def _snapshot() -> Snapshot:
    view = {
        "label_id": 7,
        "uidvalidity": 3,
        "highest_modseq": 40,
        "uids": [2, 5, 9],
        "email_ids": [12, 15, 19],
        "thread_ids": [1, 1, 2],
        "modseqs": [10, 20, 30],
        "flags": [1, 3, 0],
        "sizes": [100, 200, 300],
        "received": [1, 2, 3],
        "keywords": [(5, "$answered"), (5, "work")],
    }
    return Snapshot.of(1, view)


def test_messages_are_made_from_the_snapshot_on_first_use_and_kept() -> None:
    snapshot = _snapshot()
    messages = Messages(snapshot)
    assert len(messages) == 3
    assert list(messages) == [2, 5, 9]
    assert 5 in messages
    assert 6 not in messages
    assert messages.get(6) is None
    five = messages[5]
    assert five.email_id == 15
    assert five.keywords == {"$answered", "work"}
    assert five.flags_item() == b"FLAGS (\\Seen \\Flagged \\Answered work)"
    five.bits = 0
    assert messages[5] is five
    assert snapshot.flags[1] == 3
    assert messages.pop(2).email_id == 12
    assert 2 not in messages
    assert list(messages) == [5, 9]
    assert len(messages) == 2
    with pytest.raises(KeyError):
        messages[2]
    messages[11] = Message(21, 3, 50, 0, 10, 4)
    assert list(messages) == [5, 9, 11]
    assert len(messages) == 3
    assert Messages(snapshot)[5].bits == 3  # another session's view starts from the snapshot


def test_the_rendered_answer_is_the_one_built_line_by_line() -> None:
    snapshot = _snapshot()
    messages = Messages(snapshot)
    for items in (("UID", "FLAGS"), ("FLAGS", "UID"), ("UID", "FLAGS", "MODSEQ"), ("MODSEQ",)):
        lines = []
        for seq, uid in enumerate(snapshot.uids, 1):
            message = messages[uid]
            fields = {
                "UID": b"UID %d" % uid,
                "FLAGS": message.flags_item(),
                "MODSEQ": b"MODSEQ (%d)" % message.modseq,
            }
            lines.append(b"* %d FETCH (%b)\r\n" % (seq, b" ".join(fields[i] for i in items)))
        assert snapshot.render_fetch(items) == b"".join(lines)
        assert snapshot.rendered[items] is snapshot.render_fetch(items)
