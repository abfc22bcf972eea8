"""The structure scan against the stdlib parser on every golden message, and by hand."""

from __future__ import annotations

import email
import email.policy
from email.message import Message
from pathlib import Path

import pytest

from mailroom.domain.mime import MimeStructure, Part, imap, scan

GOLDEN = sorted((Path(__file__).parents[2] / "delivery" / "golden").glob("*.eml"))


def _leaves(msg: Message, prefix: str = "") -> list[tuple[str, Message]]:
    """IMAP part numbers of the stdlib's leaves (not descending into message/rfc822)."""
    if not msg.is_multipart():
        return [(prefix or "1", msg)]
    out: list[tuple[str, Message]] = []
    payload = msg.get_payload()
    assert isinstance(payload, list)
    for index, child in enumerate(payload, 1):
        number = f"{prefix}.{index}" if prefix else str(index)
        if child.get_content_maintype() == "multipart" and child.is_multipart():
            out.extend(_leaves(child, number))
        else:
            out.append((number, child))
    return out


def _our_leaves(part: Part) -> list[Part]:
    if part.is_multipart:
        return [leaf for child in part.parts for leaf in _our_leaves(child)]
    return [part]


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_leaves_agree_with_the_stdlib_parser(path: Path) -> None:
    raw = path.read_bytes()
    structure = scan(raw)
    theirs = _leaves(email.message_from_bytes(raw, policy=email.policy.compat32))
    ours = _our_leaves(structure.root)
    if any(m.get_content_maintype() == "multipart" and not m.is_multipart() for _, m in theirs):
        pytest.skip("the stdlib keeps a broken multipart as one part")
    assert [p.section for p in ours] == [n for n, _ in theirs]
    for part, (_, message) in zip(ours, theirs, strict=True):
        expected = message.get_payload(decode=True)
        if message.get_content_maintype() == "message":
            continue
        got = imap.binary_bytes(structure, [int(n) for n in part.section.split(".")], raw)
        assert isinstance(expected, bytes)
        if part.encoding in (None, "7bit", "8bit", "binary"):
            assert got.rstrip(b"\r\n") == expected.rstrip(b"\r\n"), part.section
        else:
            assert got == expected, part.section
    assert MimeStructure.from_json(structure.to_json()) == structure


def test_offsets_and_counts() -> None:
    raw = (
        b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\n\r\nfirst\r\nline two\r\n"
        b'--b\r\nContent-Type: text/plain; charset="ISO-8859-1"; format=flowed\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\nContent-Language: en, de\r\n"
        b"Content-ID: <c1@x>\r\nContent-Location: http://x/\r\n y\r\n\r\ncaf=E9=\r\n!\r\n--b--\r\n"
    )
    s = scan(raw)
    one, two = s.root.parts
    assert raw[one.body_start : one.body_end] == b"first\r\nline two"
    assert one.lines == 2
    assert one.media_type == "text/plain"
    assert one.header_start == one.body_start - 2
    assert raw[two.body_start : two.body_end] == b"caf=E9=\r\n!"
    assert two.params == (("charset", "ISO-8859-1"), ("format", "flowed"))
    assert two.encoding == "quoted-printable"
    assert two.decoded_size == len("café!")
    assert two.language == ("en", "de")
    assert two.content_id == "<c1@x>"
    assert two.location == "http://x/y"
    assert s.envelope.subject == "x"


def test_no_boundary_no_blank_line_and_lf_only() -> None:
    s = scan(b"Content-Type: multipart/mixed\n\nbody\n")
    assert s.root.media_type == "text/plain"
    assert s.root.section == "1"
    s = scan(b"Subject: a\nnot a header line\nmore\n")
    assert s.root.body_start == len(b"Subject: a\n")
    s = scan(b"")
    assert s.root.section == "1"
    assert s.root.size == 0
    s = scan(b"Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/html\n\n<b>x</b>\n--z")
    (only,) = s.root.parts
    assert only.media_type == "text/html"
    assert (
        b"Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/html\n\n<b>x</b>\n--z"[
            only.body_start : only.body_end
        ]
        == b"<b>x</b>"
    )


def test_a_longer_boundary_is_not_ours_and_a_missing_close_ends_at_the_end() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\nx\r\n--abc\r\ny\r\n--ab\r\n\r\nz\r\n"
    )
    s = scan(raw)
    assert [raw[p.body_start : p.body_end] for p in s.root.parts] == [b"x\r\n--abc\r\ny", b"z\r\n"]


def test_digest_defaults_to_messages_and_nested_numbering() -> None:
    raw = (
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nbody one\r\n"
        b"--d\r\n\r\nSubject: two\r\nContent-Type: multipart/mixed; boundary=e\r\n\r\n"
        b"--e\r\n\r\nA\r\n--e\r\n\r\nB\r\n--e--\r\n--d--\r\n"
    )
    s = scan(raw)
    first, second = s.root.parts
    assert first.media_type == "message/rfc822"
    assert first.envelope is not None
    assert first.envelope.subject == "one"
    assert first.message is not None
    assert first.message.section == "1.1"
    assert second.message is not None
    assert [p.section for p in second.message.parts] == ["2.1", "2.2"]
    assert imap.section_bytes(s, imap.Section((2, 2)), raw) == b"B"


def test_limits_hold() -> None:
    deep = b"".join(
        b"Content-Type: multipart/mixed; boundary=%d\r\n\r\n--%d\r\n" % (i, i) for i in range(200)
    )
    s = scan(deep + b"\r\nleaf\r\n", max_depth=10)
    depth = 0
    part = s.root
    while part.parts:
        part, depth = part.parts[0], depth + 1
    assert depth < 10
    many = b"Content-Type: multipart/mixed; boundary=m\r\n\r\n" + b"--m\r\n\r\nx\r\n" * 5000
    assert len(scan(many, max_parts=100).root.walk()) <= 100
