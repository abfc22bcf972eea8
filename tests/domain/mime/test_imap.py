"""IMAP views of the structure: ENVELOPE, BODYSTRUCTURE, sections, BINARY (RFC 9051)."""

from __future__ import annotations

import pytest

from mailroom.domain.mime import imap, scan
from mailroom.domain.mime.imap import Section

RAW = (
    b'From: "Joe Q. Public" <john.q.public@example.com>\r\n'
    b"To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\r\n"
    b"Cc: <boss@nil.test>, Undisclosed: ;\r\n"
    b"Subject: =?iso-8859-1?q?caf=E9?=\r\n"
    b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
    b"Message-ID: <5678.21-Nov-1997@example.com>\r\n"
    b"In-Reply-To: <1234@local.machine.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"--outer\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Language: en\r\n"
    b"\r\n"
    b"line one\r\nline two\r\n"
    b"--outer\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b'Content-Disposition: attachment; filename="a b.bin"\r\n'
    b"Content-ID: <part2@x>\r\n"
    b"Content-Description: a file\r\n"
    b"\r\n"
    b"begin 644 x\r\n"
    b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: inner@x.test\r\nSubject: inner\r\nContent-Type: text/html\r\n\r\n<p>in</p>\r\n"
    b"--outer--\r\n"
)
S = scan(RAW)


def test_envelope_keeps_raw_values_and_defaults_sender_and_reply_to() -> None:
    env = imap.envelope(S.envelope)
    assert env[0] == "Tue, 1 Jul 2003 10:52:37 +0200"
    assert env[1] == "=?iso-8859-1?q?caf=E9?="  # encoded words are the client's to decode
    joe = [["Joe Q. Public", None, "john.q.public", "example.com"]]
    assert env[2] == joe
    assert env[3] == joe
    assert env[4] == joe
    assert env[5] == [
        ["Mary Smith", None, "mary", "x.test"],
        [None, None, "jdoe", "example.org"],
        ["Who?", None, "one", "y.test"],
    ]
    assert env[6] == [
        [None, None, "boss", "nil.test"],
        [None, None, "Undisclosed", None],
        [None, None, None, None],
    ]
    assert env[7] is None
    assert env[8] == "<1234@local.machine.example>"
    assert env[9] == "<5678.21-Nov-1997@example.com>"


def test_bodystructure_and_body() -> None:
    inner_env = imap.envelope(S.root.parts[2].envelope)  # type: ignore[arg-type]
    assert imap.body_structure(S.root) == [
        (
            ["text", "plain", ["charset", "utf-8"], None, None, "7bit", 18, 2, None, None, "en", None],
            [
                "application",
                "octet-stream",
                None,
                "<part2@x>",
                "a file",
                "x-uuencode",
                11,
                None,
                ["attachment", ["filename", "a b.bin"]],
                None,
                None,
            ],
            [
                "message",
                "rfc822",
                None,
                None,
                None,
                "7bit",
                72,
                inner_env,
                ["text", "html", ["charset", "us-ascii"], None, None, "7bit", 9, 1, None, None, None, None],
                5,
                None,
                None,
                None,
                None,
            ],
        ),
        "mixed",
        ["boundary", "outer"],
        None,
        None,
        None,
    ]
    assert inner_env[1] == "inner"
    assert imap.body_structure(S.root, extensible=False) == [
        (
            ["text", "plain", ["charset", "utf-8"], None, None, "7bit", 18, 2],
            ["application", "octet-stream", None, "<part2@x>", "a file", "x-uuencode", 11],
            [
                "message",
                "rfc822",
                None,
                None,
                None,
                "7bit",
                72,
                inner_env,
                ["text", "html", ["charset", "us-ascii"], None, None, "7bit", 9, 1],
                5,
            ],
        ),
        "mixed",
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", Section()),
        ("TEXT", Section((), "TEXT")),
        ("header", Section((), "HEADER")),
        ("1.2.3", Section((1, 2, 3))),
        ("3.HEADER", Section((3,), "HEADER")),
        ("1.MIME", Section((1,), "MIME")),
        ("HEADER.FIELDS (From To)", Section((), "HEADER.FIELDS", ("From", "To"))),
        ('2.header.fields.not ("Subject")', Section((2,), "HEADER.FIELDS.NOT", ("Subject",))),
        ("MIME", None),
        ("0", None),
        ("1.", None),
        (".1", None),
        ("1..2", None),
        ("HEADER.FIELDS", None),
        ("HEADER.FIELDS ()", None),
        ("TEXT (From)", None),
        ("1.BOGUS", None),
        ("01", None),
        ("1234567890", None),
        ("HEADER.FIELDS (a(b))", None),
    ],
)
def test_parse_section(spec: str, expected: Section | None) -> None:
    assert imap.parse_section(spec) == expected


TRACE = b"Return-Path: <bob@x>\r\nReceived: from a by b; Sat, 5 Dec 2026 10:00:00 +0000\r\n"


def _get(spec: str) -> bytes:
    section = imap.parse_section(spec)
    assert section is not None
    return imap.section_bytes(S, section, RAW, TRACE)


def test_sections_of_the_stored_message() -> None:
    assert _get("") == TRACE + RAW
    assert _get("HEADER") == TRACE + RAW[: RAW.index(b"\r\n\r\n") + 4]
    assert _get("TEXT") == RAW[RAW.index(b"\r\n\r\n") + 4 :]
    assert _get("1") == b"line one\r\nline two"
    assert _get("1.MIME") == b"Content-Type: text/plain; charset=utf-8\r\nContent-Language: en\r\n\r\n"
    assert _get("3") == b"From: inner@x.test\r\nSubject: inner\r\nContent-Type: text/html\r\n\r\n<p>in</p>"
    assert _get("3.HEADER") == b"From: inner@x.test\r\nSubject: inner\r\nContent-Type: text/html\r\n\r\n"
    assert _get("3.TEXT") == b"<p>in</p>"
    assert _get("3.1") == b"<p>in</p>"
    assert _get("3.2") == b""
    assert _get("4") == b""
    assert _get("1.HEADER") == b""  # not a message/rfc822 part
    assert _get("HEADER.FIELDS (subject RECEIVED)") == (
        b"Received: from a by b; Sat, 5 Dec 2026 10:00:00 +0000\r\nSubject: =?iso-8859-1?q?caf=E9?=\r\n\r\n"
    )
    not_fields = _get(
        "HEADER.FIELDS.NOT (From To Cc Subject Date Message-ID In-Reply-To Return-Path Received)"
    )
    assert not_fields == b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n'
    assert _get("3.HEADER.FIELDS (Subject)") == b"Subject: inner\r\n\r\n"
    assert _get("HEADER.FIELDS (X-None)") == b"\r\n"


def test_section_range_matches_section_bytes() -> None:
    message = TRACE + RAW
    for spec in ("", "HEADER", "TEXT", "1", "1.MIME", "2", "3", "3.HEADER", "3.TEXT", "3.1", "2.MIME"):
        section = imap.parse_section(spec)
        assert section is not None
        span = imap.section_range(S, section, len(TRACE))
        assert span is not None
        assert message[span[0] : span[1]] == _get(spec), spec
    assert imap.section_range(S, Section((9,)), len(TRACE)) is None


def test_binary_decodes_and_refuses_unknown_encodings() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"aGVs\r\nbG8=\r\n--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db=\r\nc\r\n"
        b"--b\r\nContent-Transfer-Encoding: x-custom\r\n\r\nzz\r\n--b--\r\n"
    )
    s = scan(raw)
    assert imap.binary_bytes(s, [1], raw) == b"hello"
    assert imap.binary_bytes(s, [2], raw) == b"a=bc"
    assert imap.binary_bytes(s, [], raw, b"T: x\r\n") == b"T: x\r\n" + raw
    assert imap.binary_bytes(s, [7], raw) == b""
    with pytest.raises(imap.UnknownTransferEncoding):
        imap.binary_bytes(s, [3], raw)
    assert imap.decode_base64(b"aGVsbG8*\r\n") == b"hello"
    assert imap.decode_base64(b"aGVsbG8gdw") == b"hello w"
