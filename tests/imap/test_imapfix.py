"""Issue 15 (imapfix): RENAME carries the children and RENAME INBOX moves its messages
(RFC 9051 §6.3.6), keywords keep the case first used. imaplib over loopback."""

from __future__ import annotations

import asyncio
import imaplib

import pytest

from tests.imap.conftest import Imap
from tests.imap.test_jmap_cross import jmap  # noqa: F401 (the fixture)
from tests.jmap.client import JmapClient

pytestmark = pytest.mark.anyio


def _listed(conn: imaplib.IMAP4) -> set[bytes]:
    typ, lines = conn.list('""', "*")
    assert typ == "OK"
    out = set()
    for line in lines:
        assert isinstance(line, bytes)
        out.add(line.rpartition(b' "/" ')[2].strip(b'"'))
    return out


def _rename_with_children(imap: Imap) -> None:
    conn = imap.login()
    try:
        for name in ("Work", "Work/Clients", "Work/Clients/Acme", "Workshop"):
            assert conn.create(name)[0] == "OK"
        assert conn.append("Work/Clients", None, None, b"Subject: kept\r\n\r\nbody\r\n")[0] == "OK"
        assert conn.rename("Work", "Job")[0] == "OK"
        names = _listed(conn)
        assert {b"Job", b"Job/Clients", b"Job/Clients/Acme", b"Workshop"} <= names
        assert not {b"Work", b"Work/Clients", b"Work/Clients/Acme"} & names
        # The child kept its messages under its new name.
        typ, data = conn.status("Job/Clients", "(MESSAGES)")
        assert typ == "OK"
        assert b"MESSAGES 1" in data[0], data
        # A mailbox cannot go inside itself; a taken name is refused.
        assert conn.rename("Job", "Job/Clients/Inner")[0] == "NO"
        assert conn.rename("Job/Clients", "Workshop")[0] == "NO"
        assert {b"Job", b"Job/Clients"} <= _listed(conn)
    finally:
        conn.logout()


async def test_rename_carries_children(imap: Imap) -> None:
    await asyncio.to_thread(_rename_with_children, imap)


def _rename_inbox(imap: Imap) -> None:
    conn = imap.login()
    try:
        assert conn.select("INBOX")[0] == "OK"
        typ, data = conn.rename("INBOX", '"Old Inbox"')
        assert typ == "OK", data
        # The session had INBOX selected: the messages left it.
        assert conn.noop()[0] == "OK"
        assert conn.status("INBOX", "(MESSAGES)")[1][0].endswith(b"(MESSAGES 0)")
        assert conn.status('"Old Inbox"', "(MESSAGES)")[1][0].endswith(b"(MESSAGES 2)")
        assert b"INBOX" in _listed(conn)
        # New mail still arrives in INBOX.
    finally:
        conn.logout()


async def test_rename_inbox_moves_its_messages(imap: Imap) -> None:
    await imap.deliver(subject="one")
    await imap.deliver(subject="two")
    await asyncio.to_thread(_rename_inbox, imap)
    await imap.deliver(subject="three")
    conn = await asyncio.to_thread(imap.login)
    try:
        status = (await asyncio.to_thread(conn.status, "INBOX", "(MESSAGES)"))[1][0]
        assert status.endswith(b"(MESSAGES 1)"), status
    finally:
        await asyncio.to_thread(conn.logout)


def _keyword_case(imap: Imap) -> None:
    conn = imap.login()
    other = imap.login()
    try:
        assert conn.append("INBOX", None, None, b"Subject: a\r\n\r\nbody\r\n")[0] == "OK"
        assert conn.append("INBOX", "($Work)", None, b"Subject: b\r\n\r\nbody\r\n")[0] == "OK"
        assert conn.select("INBOX")[0] == "OK"
        assert other.select("INBOX")[0] == "OK"
        typ, data = conn.store("1", "+FLAGS", "($Label1)")
        assert typ == "OK"
        assert b"$Label1" in data[0], data
        # Matching is case-insensitive: another spelling is the same keyword, the first stays.
        assert conn.store("2", "+FLAGS", "($LABEL1)")[0] == "OK"
        typ, data = conn.fetch("1:2", "(FLAGS)")
        assert all(b"$Label1" in line and b"$label1" not in line for line in data), data
        assert b"$Work" in data[1], data
        typ, data = conn.search(None, "KEYWORD", "$label1")
        assert data[0].split() == [b"1", b"2"], data
        assert conn.store("2", "-FLAGS", "($label1)")[0] == "OK"
        assert b"$Label1" not in conn.fetch("2", "(FLAGS)")[1][0]
        # Another session learns the spelling (its FLAGS response and FETCH).
        assert other.noop()[0] == "OK"
        flags = other.response("FLAGS")[1]
        assert any(b"$Label1" in f for f in flags if f), flags
        assert b"$Label1" in other.fetch("1", "(FLAGS)")[1][0]
    finally:
        conn.logout()
        other.logout()
    # A new session shows the same.
    conn = imap.login()
    try:
        typ, data = conn.select("INBOX")
        assert b"$Label1" in conn.response("FLAGS")[1][0]
        assert b"$Label1" in conn.fetch("1", "(FLAGS)")[1][0]
    finally:
        conn.logout()


async def test_keywords_keep_their_case(imap: Imap, jmap: JmapClient) -> None:  # noqa: F811
    await asyncio.to_thread(_keyword_case, imap)
    # JMAP still shows keywords lower case (RFC 8621 §4.1.1).
    ids = (await jmap.call("Email/query", {}))["ids"]
    found = (await jmap.call("Email/get", {"ids": ids, "properties": ["keywords"]}))["list"]
    keywords = sorted(k for e in found for k in e["keywords"])
    assert keywords == ["$label1", "$work"], keywords
