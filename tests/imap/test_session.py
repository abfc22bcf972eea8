"""Log in, list, select and fetch with Python's imaplib over loopback."""

from __future__ import annotations

import asyncio
import imaplib

import pytest

from tests.imap.conftest import PASSWORD, Imap

pytestmark = pytest.mark.anyio


def _login_select_fetch(imap: Imap) -> None:
    conn = imap.client()
    typ, caps = conn.capability()
    assert typ == "OK"
    assert b"IMAP4rev2" in caps[0]
    assert b"AUTH=PLAIN" in caps[0]
    conn.login("alice@example.org", PASSWORD)
    typ, caps = conn.capability()
    assert b"MOVE" in caps[0]
    assert b"UIDPLUS" in caps[0]
    assert b"AUTH=PLAIN" not in caps[0]
    typ, boxes = conn.list()
    assert typ == "OK"
    text = b"\n".join(boxes)  # type: ignore[arg-type]
    assert b'"/" INBOX' in text
    assert b"\\Junk" in text
    assert b"\\Trash" in text
    assert b"\\Sent" in text
    typ, data = conn.select("INBOX")
    assert typ == "OK"
    assert data == [b"1"]
    typ, data = conn.fetch("1", "(UID FLAGS RFC822.SIZE ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    first = data[0]
    assert isinstance(first, tuple)
    assert b"FLAGS (\\Recent)" in first[0]  # the first session to see it (RFC 3501 §2.3.2)
    assert b'"Hello"' in first[0]
    assert first[1].strip() == b"Subject: Hello"
    typ, data = conn.fetch("1", "(BODY[])")
    assert typ == "OK"
    body = data[0]
    assert isinstance(body, tuple)
    assert b"this is a test" in body[1]
    typ, data = conn.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0]  # type: ignore[operator]
    typ, data = conn.uid("SEARCH", "TEXT", "test")
    assert typ == "OK"
    assert data[0] != b""
    typ, data = conn.search(None, "UNSEEN")
    assert data == [b""]
    conn.logout()


async def test_login_select_fetch(imap: Imap) -> None:
    await imap.deliver()
    await asyncio.to_thread(_login_select_fetch, imap)


def _bad_password(imap: Imap) -> None:
    conn = imap.client()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        conn.login("alice@example.org", "wrong")
    conn.logout()


async def test_wrong_password_is_refused(imap: Imap) -> None:
    await asyncio.to_thread(_bad_password, imap)


MULTIPART = (
    b"From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: Pictures\r\n"
    b"Message-ID: <mp@example.net>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n"
    b"--XX\r\nContent-Type: application/octet-stream; name=a.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=a.bin\r\n\r\n"
    b"AAECAw==\r\n--XX--\r\n"
)


def _structure(imap: Imap) -> None:
    conn = imap.login()
    typ, data = conn.append("INBOX", None, None, MULTIPART)
    assert typ == "OK"
    conn.select("INBOX")
    typ, data = conn.fetch(
        "1", "(BODYSTRUCTURE BODY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[2.MIME])"
    )
    assert typ == "OK"
    head = data[0][0]  # type: ignore[index]
    assert b'("text" "plain" ("charset" "utf-8")' in head
    assert b'"mixed"' in head
    assert b"BINARY.SIZE[2] 4" in b"".join(d if isinstance(d, bytes) else d[0] for d in data)  # type: ignore[misc]
    parts = [d[1] for d in data if isinstance(d, tuple)]
    assert parts[0] == b"See attached."
    assert parts[1] == b"\x00\x01\x02\x03"
    assert parts[2].startswith(b"Content-Type: application/octet-stream")
    typ, data = conn.fetch("1", "(BODY.PEEK[]<0.4>)")
    assert data[0][1] == b"Retu" or data[0][1] == b"From"  # type: ignore[index]
    conn.logout()


async def test_bodystructure_sections_and_binary_from_the_stored_structure(imap: Imap) -> None:
    await asyncio.to_thread(_structure, imap)


def _quota(imap: Imap) -> None:
    conn = imap.login()
    typ, data = conn.getquotaroot("INBOX")
    assert typ == "OK"
    assert data[0] == [b'INBOX ""']
    assert data[1] == [b'"" (STORAGE 0 1024)']
    conn.logout()


async def test_quota(imap: Imap) -> None:
    await imap.mailroom.registry.call(
        "admin.users.update", {"email": "alice@example.org", "changes": {"quota_bytes": 1024 * 1024}}
    )
    await asyncio.to_thread(_quota, imap)


def _sort_thread(imap: Imap) -> None:
    conn = imap.login()
    conn.select("INBOX")
    typ, data = conn.sort("(SUBJECT)", "UTF-8", "ALL")
    assert typ == "OK"
    assert data == [b"2 3 1"]  # "Apples", "Re: Bananas" (base subject "bananas"), "Cherries"
    typ, data = conn.sort("(REVERSE SIZE)", "UTF-8", "ALL")
    assert data == [b"3 1 2"]  # ties (the same arrival second) would go by sequence number
    typ, data = conn.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK"
    assert data == [b"(1 3)(2)"]
    conn.logout()


async def test_sort_and_thread(imap: Imap) -> None:
    await imap.deliver(subject="Cherries", message_id="<c@x>")
    await imap.deliver(subject="Apples", message_id="<a@x>")
    await imap.deliver(subject="Re: Bananas", message_id="<b@x>", in_reply_to="<c@x>", references="<c@x>")
    await asyncio.to_thread(_sort_thread, imap)
