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


# -- \Recent (RFC 3501 §2.3.2) -------------------------------------------------------------------


def _recent_of(conn: object) -> list[bytes | None]:
    return conn.response("RECENT")[1]  # type: ignore[attr-defined,no-any-return]


async def test_recent_is_seen_by_one_rev1_session(imap: Imap) -> None:
    await imap.deliver(subject="first")
    first = await asyncio.to_thread(imap.login)
    second = await asyncio.to_thread(imap.login)
    looker = await asyncio.to_thread(imap.login)
    try:
        await asyncio.to_thread(first.select, "INBOX")
        assert _recent_of(first) == [b"1"]
        _typ, data = await asyncio.to_thread(first.fetch, "1", "(FLAGS)")
        assert b"\\Recent" in data[0]  # type: ignore[operator]
        assert (await asyncio.to_thread(first.search, None, "RECENT"))[1] == [b"1"]
        assert (await asyncio.to_thread(first.search, None, "NEW"))[1] == [b"1"]
        await asyncio.to_thread(second.select, "INBOX")
        assert _recent_of(second) == [b"0"]
        _typ, data = await asyncio.to_thread(second.fetch, "1", "(FLAGS)")
        assert b"\\Recent" not in data[0]  # type: ignore[operator]
        assert (await asyncio.to_thread(second.search, None, "RECENT"))[1] == [b""]
        # New mail: the session that syncs first has it as recent, the other does not.
        await imap.deliver(subject="second")
        await asyncio.to_thread(second.noop)
        assert _recent_of(second) == [b"1"]
        await asyncio.to_thread(first.noop)
        assert _recent_of(first) == [b"1"]  # still only the first message
        _typ, data = await asyncio.to_thread(first.fetch, "2", "(FLAGS)")
        assert b"\\Recent" not in data[0]  # type: ignore[operator]
        # EXAMINE looks without claiming: the next read-write SELECT still gets it.
        await imap.deliver(subject="third")
        await asyncio.to_thread(looker.select, "INBOX", True)
        assert _recent_of(looker) == [b"1"]
        third = await asyncio.to_thread(imap.login)
        try:
            await asyncio.to_thread(third.select, "INBOX")
            assert _recent_of(third) == [b"1"]
            _typ, data = await asyncio.to_thread(third.search, None, "RECENT")
            assert data == [b"3"]
        finally:
            await asyncio.to_thread(third.logout)
    finally:
        for conn in (first, second, looker):
            await asyncio.to_thread(conn.logout)


def _rev2_has_no_recent(imap: Imap) -> None:
    conn = _client(imap)
    try:
        conn.enable("IMAP4rev2")
        selected = conn.select_folder("INBOX")
        assert b"RECENT" not in selected
        flags = conn.fetch("1:*", ["FLAGS"])
        assert all(b"\\Recent" not in f[b"FLAGS"] for f in flags.values())
    finally:
        conn.logout()
    # An IMAP4rev2 session claimed nothing: a rev1 session still gets it as recent.
    conn = _client(imap)
    try:
        assert conn.select_folder("INBOX")[b"RECENT"] == 1
    finally:
        conn.logout()


async def test_rev2_sessions_neither_see_nor_claim_recent(imap: Imap) -> None:
    await imap.deliver()
    await asyncio.to_thread(_rev2_has_no_recent, imap)


# -- the whole-label view kept per process (store/imap.label_view) --------------------------------


def _select_sees_every_change(imap: Imap) -> None:
    watcher = imap.login()
    try:
        watcher.select("INBOX")
        assert watcher.fetch("1:*", "(FLAGS)")[0] == "OK"
        # Changes by another session between two SELECTs of the same label.
        other = imap.login()
        try:
            other.select("INBOX")
            assert other.store("1", "+FLAGS", "(\\Flagged $Work)")[0] == "OK"
            assert other.store("2", "+FLAGS", "(\\Deleted)")[0] == "OK"
            assert other.expunge()[0] == "OK"
        finally:
            other.logout()
        again = imap.login()
        try:
            _typ, data = again.select("INBOX")
            assert data == [b"2"]
            _typ, data = again.fetch("1:*", "(UID FLAGS)")
            assert b"\\Flagged" in data[0], data  # type: ignore[operator]
            assert b"$Work" in data[0], data  # type: ignore[operator]
            assert b"UID 3" in data[1], data  # type: ignore[operator]
        finally:
            again.logout()
    finally:
        watcher.logout()


async def test_a_select_after_changes_sees_them(imap: Imap) -> None:
    for n in range(3):
        await imap.deliver(subject=f"message {n}")
    await asyncio.to_thread(_select_sees_every_change, imap)
    await imap.deliver(subject="late")
    conn = await asyncio.to_thread(imap.login)
    try:
        assert (await asyncio.to_thread(conn.select, "INBOX"))[1] == [b"3"]
    finally:
        await asyncio.to_thread(conn.logout)


# -- THREAD=REFERENCES (RFC 5256) over the wire -----------------------------------------------


async def test_thread_references_answers_the_rfc_tree(imap: Imap) -> None:
    from datetime import UTC, datetime

    def at(minute: int) -> datetime:
        return datetime(2026, 1, 1, 10, minute, tzinfo=UTC)

    # 1 starts; 2 and 3 reply to 1; 4 replies to 3; 5 and 6 reply to a message not here.
    await imap.deliver(subject="Plan", message_id="<a@x>", date=at(1))
    await imap.deliver(subject="Re: Plan", message_id="<b@x>", references="<a@x>", date=at(2))
    await imap.deliver(subject="Re: Plan", message_id="<c@x>", references="<a@x>", date=at(3))
    await imap.deliver(subject="Re: Plan", message_id="<d@x>", references="<a@x> <c@x>", date=at(4))
    await imap.deliver(subject="Re: Gone", message_id="<e@x>", in_reply_to="<gone@x>", date=at(5))
    await imap.deliver(subject="Re: Gone", message_id="<f@x>", references="<gone@x>", date=at(6))

    def run() -> tuple[list[object], list[bytes | None]]:
        conn = _client(imap)
        try:
            conn.select_folder("INBOX")
            tree = conn.thread("REFERENCES", "ALL")
        finally:
            conn.logout()
        raw = imap.login()
        try:
            raw.select("INBOX")
            typ, data = raw.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
            assert typ == "OK"
            typ, none = raw.uid("THREAD", "REFERENCES", "UTF-8", "SUBJECT", "nothing-matches-this")
            assert typ == "OK"
            assert none == [b""], none
        finally:
            raw.logout()
        return tree, data

    tree, data = await asyncio.to_thread(run)
    assert list(tree) == [(1, (2,), (3, 4)), ((5,), (6,))]
    assert data == [b"(1 (2)(3 4))((5)(6))"]


# -- ENVELOPE from the worker's rendered ones (_envelopes) ------------------------------------


def _envelopes_twice(imap: Imap) -> None:
    first = imap.login()
    second = imap.login()
    try:
        first.select("INBOX")
        second.select("INBOX")
        typ, cold = first.fetch("1:*", "(ENVELOPE)")
        assert typ == "OK"
        # Another session, now served from the kept ones: the same bytes, and the same as
        # rendered beside BODYSTRUCTURE (which reads the structure).
        assert second.fetch("1:*", "(ENVELOPE)") == ("OK", cold)
        typ, both = second.fetch("2", "(ENVELOPE BODYSTRUCTURE)")
        assert both[0].startswith(cold[1][:-1] + b" BODYSTRUCTURE")  # type: ignore[index,union-attr]
        assert b'"second"' in cold[1]  # type: ignore[operator]
    finally:
        first.logout()
        second.logout()


async def test_envelopes_are_the_same_from_the_worker_cache(imap: Imap) -> None:
    await imap.deliver(subject="first", message_id="<1@x>")
    await imap.deliver(subject="second", message_id="<2@x>")
    await asyncio.to_thread(_envelopes_twice, imap)


# -- UTF8=ACCEPT (RFC 6855) -------------------------------------------------------------------


def _utf8_accept(imap: Imap) -> None:
    conn = imap.login()
    try:
        assert b"UTF8=ACCEPT" in conn.capability()[1][0]  # type: ignore[operator]
        typ, data = conn.enable("UTF8=ACCEPT")  # imaplib then sends UTF-8
        assert typ == "OK", data
        assert conn.create('"Reçus/日本"')[0] == "OK"
        typ, lines = conn.list('""', "Re*")
        assert typ == "OK"
        assert '"Reçus/日本"'.encode() in b"".join(x for x in lines if isinstance(x, bytes))
        typ, data = conn.select('"Reçus/日本"')
        assert typ == "OK", data
    finally:
        conn.logout()
    # A session that did not enable it sees modified UTF-7 (RFC 3501 §5.1.3).
    old = imap.login()
    try:
        typ, lines = old.list('""', "Re*")
        assert b'"/" Re&AOc-us/&ZeVnLA-' in b"".join(x for x in lines if isinstance(x, bytes)), lines
    finally:
        old.logout()


async def test_utf8_accept(imap: Imap) -> None:
    await asyncio.to_thread(_utf8_accept, imap)
