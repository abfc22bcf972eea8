"""Issue 15 §2: subscriptions stored per user (SUBSCRIBE, UNSUBSCRIBE, LSUB, LIST (SUBSCRIBED)),
\\Recent for IMAP4rev1 sessions (RFC 3501 §2.3.2), THREAD=REFERENCES as RFC 5256's tree and
UTF8=ACCEPT (RFC 6855). imaplib and IMAPClient over loopback."""

from __future__ import annotations

import asyncio

import pytest
from imapclient import IMAPClient

from tests.imap.conftest import PASSWORD, Imap

pytestmark = pytest.mark.anyio


def _client(imap: Imap) -> IMAPClient:
    conn = IMAPClient("127.0.0.1", port=imap.port, ssl=False, timeout=10)
    conn.login("alice@example.org", PASSWORD)
    return conn


def _names(lines: list[bytes | tuple[bytes, ...] | None]) -> dict[bytes, bytes]:
    """``name → attributes`` from imaplib's LIST/LSUB lines."""
    out: dict[bytes, bytes] = {}
    for line in lines:
        assert isinstance(line, bytes), line
        attrs, _, rest = line.partition(b") ")
        name = rest.split(b" ", 1)[1].strip(b'"')
        out[name] = attrs.lstrip(b"(")
    return out


# -- subscriptions ----------------------------------------------------------------------------


def _subscriptions(imap: Imap) -> None:
    conn = imap.login()
    try:
        assert conn.create("Projects")[0] == "OK"
        assert conn.create("Projects/Old")[0] == "OK"
        # Every mailbox starts subscribed (a client listing subscribed folders sees them all).
        typ, lines = conn.lsub('""', "*")
        assert typ == "OK"
        first = _names(lines)
        assert {b"INBOX", b"Sent", b"Trash", b"Projects", b"Projects/Old"} <= set(first)
        assert conn.unsubscribe("Projects/Old")[0] == "OK"
        assert conn.unsubscribe("Trash")[0] == "OK"
        # A name with no mailbox may be subscribed (RFC 9051 §6.3.7).
        assert conn.subscribe("Shared/Later")[0] == "OK"
        subscribed = _names(conn.lsub('""', "*")[1])
        assert b"Projects/Old" not in subscribed
        assert b"Trash" not in subscribed
        assert b"Projects" in subscribed
        assert subscribed[b"Shared/Later"] == b"\\Noselect"
        # LIST (SUBSCRIBED): the subscribed ones, a missing one as \NonExistent.
        typ, lines = conn._simple_command("LIST", "(SUBSCRIBED)", '""', "*")  # type: ignore[attr-defined]
        assert typ == "OK"
        listed = _names(conn._untagged_response(typ, lines, "LIST")[1])  # type: ignore[attr-defined]
        assert b"Trash" not in listed
        assert b"\\Subscribed" in listed[b"INBOX"]
        assert b"\\NonExistent" in listed[b"Shared/Later"]
        # LIST RETURN (SUBSCRIBED): every mailbox, \Subscribed on the subscribed ones only.
        typ, lines = conn._simple_command("LIST", '""', "*", "RETURN", "(SUBSCRIBED)")  # type: ignore[attr-defined]
        everything = _names(conn._untagged_response(typ, lines, "LIST")[1])  # type: ignore[attr-defined]
        assert b"\\Subscribed" not in everything[b"Trash"]
        assert b"\\Subscribed" in everything[b"Projects"]
        # Plain LIST is not changed by subscriptions.
        assert b"Trash" in _names(conn.list()[1])
        # Renaming moves the choice; unsubscribing a name with no mailbox forgets it.
        assert conn.rename("Projects/Old", "Attic")[0] == "OK"
        assert conn.unsubscribe("Shared/Later")[0] == "OK"
    finally:
        conn.logout()
    # Stored per user: a new session sees the same.
    conn = imap.login()
    try:
        subscribed = _names(conn.lsub('""', "*")[1])
        assert b"Attic" not in subscribed
        assert b"Projects/Old" not in subscribed
        assert b"Shared/Later" not in subscribed
        assert b"Trash" not in subscribed
        assert conn.subscribe("Trash")[0] == "OK"
        assert b"Trash" in _names(conn.lsub('""', "T*")[1])
    finally:
        conn.logout()


async def test_subscriptions_are_stored_per_user(imap: Imap) -> None:
    await asyncio.to_thread(_subscriptions, imap)
    # The service answers what JMAP's isSubscribed will read.
    from tests.mailhelpers import create_user

    await create_user(imap.mailroom, "bob@example.org")
    conn = await asyncio.to_thread(imap.login, "bob@example.org")
    try:
        assert b"Trash" in _names((await asyncio.to_thread(conn.lsub, '""', "*"))[1])
    finally:
        await asyncio.to_thread(conn.logout)


def _imapclient_subscriptions(imap: Imap) -> None:
    conn = _client(imap)
    try:
        conn.create_folder("Receipts")
        assert "Receipts" in [f[2] for f in conn.list_sub_folders()]
        conn.unsubscribe_folder("Receipts")
        assert "Receipts" not in [f[2] for f in conn.list_sub_folders()]
        assert "Receipts" in [f[2] for f in conn.list_folders()]
        conn.subscribe_folder("Receipts")
        assert "Receipts" in [f[2] for f in conn.list_sub_folders()]
        # Deleting a mailbox leaves an explicit subscription in place (RFC 9051 §6.3.4).
        conn.delete_folder("Receipts")
        found = {f[2]: f[0] for f in conn.list_sub_folders()}
        assert b"\\Noselect" in found["Receipts"]
    finally:
        conn.logout()


async def test_subscriptions_with_imapclient(imap: Imap) -> None:
    await asyncio.to_thread(_imapclient_subscriptions, imap)


def _bad_subscriptions(imap: Imap) -> None:
    conn = imap.login()
    try:
        typ, data = conn.subscribe('"' + "x" * 300 + '"')
        assert typ == "NO", data
        assert conn.lsub('""', "x*") == ("OK", [None])
    finally:
        conn.logout()


async def test_overlong_subscription_name_is_refused(imap: Imap) -> None:
    await asyncio.to_thread(_bad_subscriptions, imap)
