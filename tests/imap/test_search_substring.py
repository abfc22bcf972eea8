"""SEARCH's text keys are case-insensitive substrings (RFC 9051 6.4.4), over a real socket.

"A message matches if the field contains the specified string": of the decoded header value
(SUBJECT, FROM/TO/CC/BCC as displayed, HEADER), of the decoded body text (BODY), of either
(TEXT); also inside words, which the word index alone cannot answer.
"""

from __future__ import annotations

import asyncio
import imaplib

import pytest

from tests.imap.conftest import Imap
from tests.mailhelpers import message

pytestmark = pytest.mark.anyio


def _append(conn: imaplib.IMAP4, raw: bytes) -> None:
    typ, data = conn.append("INBOX", None, None, raw)
    assert typ == "OK", data


def _uids(conn: imaplib.IMAP4, *criteria: str, literal: str | None = None) -> list[int]:
    """UID SEARCH; with ``literal``, CHARSET UTF-8 and that needle sent as a literal last."""
    if literal is not None:
        conn.literal = literal.encode()  # type: ignore[attr-defined]
        typ, data = conn.uid("SEARCH", "CHARSET", "UTF-8", *criteria)
    else:
        typ, data = conn.uid("SEARCH", *criteria)
    assert typ == "OK", data
    return [int(n) for n in data[0].split()]


def _mailbox(conn: imaplib.IMAP4) -> None:
    _append(
        conn,
        message(
            subject="Quarterly Invoicing report",
            sender='"Zebediah Quux" <zq-billing@accounts.example.net>',
            to="alice@example.org",
            headers={"Cc": "Carol <carol.cc@example.com>", "X-Tracking": "Zeta-Omega-77"},
            body="Please find the reconciliation numbers attached.\r\n",
            message_id="<one@example.net>",
        ),
    )
    _append(
        conn,
        message(
            subject="=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=",
            sender="=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>",
            to="alice@example.org",
            headers={"Bcc": "Hidden Person <secret-bcc@example.org>"},
            body="Liebe Grüße von der Straße, wir sehen uns übermorgen.\r\n",
            message_id="<two@example.net>",
        ),
    )
    _append(
        conn,
        message(
            subject="Lunch",
            sender="Bob <bob@example.net>",
            body="Nothing relevant here at all.\r\n",
            message_id="<three@example.net>",
        ),
    )


def _substrings(imap: Imap) -> None:
    conn = imap.login()
    try:
        conn.select("INBOX")
        _mailbox(conn)
        assert _uids(conn, "SUBJECT", "voicin") == [1]
        assert _uids(conn, "SUBJECT", '"RLY INVOICING REP"') == [1]
        assert _uids(conn, "FROM", "ebedia") == [1]  # inside the display name
        assert _uids(conn, "FROM", "billing@accounts") == [1]  # inside the address
        assert _uids(conn, "CC", "ROL.CC@") == [1]
        assert _uids(conn, "TO", "alice@example") == [1, 2, 3]
        assert _uids(conn, "BODY", "concilia") == [1]
        assert _uids(conn, "BODY", '"NUMBERS ATT"') == [1]
        assert _uids(conn, "TEXT", "concilia") == [1]  # body half of TEXT
        assert _uids(conn, "TEXT", "ta-omega-7") == [1]  # header half of TEXT (any field)
        assert _uids(conn, "HEADER", "X-Tracking", "omega") == [1]
        assert _uids(conn, "HEADER", "X-Tracking", '""') == [1]  # the field exists
        assert _uids(conn, "NOT", "HEADER", "X-Tracking", '""') == [2, 3]
        assert _uids(conn, "BCC", "cret-bc") == [2]
        # No false positives: the words are elsewhere only, or not at all.
        assert _uids(conn, "SUBJECT", "concilia") == []
        assert _uids(conn, "BODY", "voicin") == []
        assert _uids(conn, "BODY", "ebedia") == []
        assert _uids(conn, "FROM", "alice") == []
        assert _uids(conn, "TEXT", "xyzzy") == []
        assert _uids(conn, "BODY", '"numbers  attached"') == []  # the text has one space
        # Combined with other keys, and in OR/NOT.
        assert _uids(conn, "OR", "SUBJECT", "lunc", "BODY", "concil") == [1, 3]
        assert _uids(conn, "NOT", "BODY", "relevan") == [1, 2]
    finally:
        conn.logout()


def _encoded(imap: Imap) -> None:
    conn = imap.login()
    try:
        conn.select("INBOX")
        _mailbox(conn)
        # Encoded-word headers are matched decoded; an ASCII part of them too.
        assert _uids(conn, "SUBJECT", '"aus M"') == [2]
        assert _uids(conn, "FROM", '"rgen M"') == [2]
        assert _uids(conn, "SUBJECT", "=?UTF-8?") == []  # never the raw encoded form
        # Non-ASCII needles (CHARSET UTF-8, as literals), case-insensitive.
        assert _uids(conn, "SUBJECT", literal="MÜNCHEN") == [2]
        assert _uids(conn, "FROM", literal="MÜLLER") == [2]
        assert _uids(conn, "BODY", literal="ÜBERMORG") == [2]
        assert _uids(conn, "TEXT", literal="grüße") == [2]
        assert _uids(conn, "BODY", literal="ßemünchen") == []
    finally:
        conn.logout()


async def test_substrings_inside_words_and_case(imap: Imap) -> None:
    await asyncio.to_thread(_substrings, imap)


async def test_encoded_words_and_utf8(imap: Imap) -> None:
    await asyncio.to_thread(_encoded, imap)
