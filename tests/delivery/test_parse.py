"""Tests for mailroom.delivery.parse.

Golden files: every ``golden/NAME.eml`` is parsed and compared with ``golden/NAME.json``
(``parse_message(raw).to_dict()``). After an intended change in output, regenerate with

    MAILROOM_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/delivery/test_parse.py

and review the JSON diff line by line before committing: the golden files must be
right, not merely what the code produces.
"""

from __future__ import annotations

import base64
import json
import os
import random
import time
from pathlib import Path

import pytest

from mailroom.delivery.parse import Address, ParsedMessage, extract_attachment, parse_message

GOLDEN = Path(__file__).parent / "golden"
EML_FILES = sorted(GOLDEN.glob("*.eml"))
UPDATE = os.environ.get("MAILROOM_UPDATE_GOLDEN") == "1"


def _load(name: str) -> bytes:
    return (GOLDEN / f"{name}.eml").read_bytes()


def _nested(depth: int, body_lines: int = 1) -> bytes:
    """A message whose text part sits `depth` multipart/mixed levels down."""
    inner = b"Content-Type: text/plain\r\n\r\n" + b"deep text\r\n" * body_lines
    for level in range(depth):
        boundary = f"b{level}".encode()
        inner = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n--' + boundary + b"\r\n"
            + inner + b"\r\n--" + boundary + b"--\r\n"
        )  # fmt: skip
    return b"From: a@example.com\r\nSubject: deep\r\n" + inner


# --- golden files -----------------------------------------------------------


def test_enough_golden_files() -> None:
    assert len(EML_FILES) >= 20


@pytest.mark.parametrize("eml", EML_FILES, ids=[p.stem for p in EML_FILES])
def test_golden(eml: Path) -> None:
    result = parse_message(eml.read_bytes()).to_dict()
    rendered = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    expected_path = eml.with_suffix(".json")
    if UPDATE:
        expected_path.write_text(rendered, encoding="utf-8")
    assert expected_path.exists(), f"run with MAILROOM_UPDATE_GOLDEN=1 to create {expected_path.name}"
    assert json.loads(rendered) == json.loads(expected_path.read_text(encoding="utf-8"))


def test_line_endings_do_not_matter() -> None:
    results = [parse_message(_load(f"line_endings_{kind}")).to_dict() for kind in ("crlf", "lf", "cr")]
    for result in results:
        result.pop("size")
    assert results[0] == results[1] == results[2]
    assert results[0]["text_body"] == "First line.\nSecond line.\n"


# --- attachments ------------------------------------------------------------


def test_extract_attachment_matches_listing() -> None:
    raw = _load("mixed_attachments")
    parsed = parse_message(raw)
    by_path = {a.part_path: a for a in parsed.attachments}
    pdf = extract_attachment(raw, by_path["2"].part_path)
    assert pdf is not None
    assert pdf.startswith(b"%PDF-1.4")
    assert len(pdf) == by_path["2"].size
    logo = extract_attachment(raw, "1.2.2")
    assert logo is not None
    assert logo.startswith(b"\x89PNG")


def test_extract_attachment_of_embedded_message() -> None:
    raw = _load("rfc822_attachment")
    data = extract_attachment(raw, "2")
    assert data is not None
    inner = parse_message(data)
    assert inner.message_id == "inner@example.org"
    assert inner.text_body == "This inner text must not become the outer body.\n"
    assert len(data) == parse_message(raw).attachments[0].size


def test_extract_attachment_single_part_message() -> None:
    raw = _load("smime_encrypted")
    assert extract_attachment(raw, "1") == base64.b64decode("MIAGCSqGSIb3DQEHA6CAMIACAQAxggE=")


@pytest.mark.parametrize("path", ["", "0", "3", "1.9", "a", "1..2", "-1", "1.2.2.1", " 2", "2 "])
def test_extract_attachment_invalid_paths(path: str) -> None:
    assert extract_attachment(_load("mixed_attachments"), path) is None


def test_extract_attachment_container_path_is_none() -> None:
    assert extract_attachment(_load("mixed_attachments"), "1") is None


def test_extract_attachment_never_raises_on_garbage() -> None:
    assert extract_attachment(b"\xff\x00garbage", "1") is not None
    assert extract_attachment(b"", "1") == b""


# --- limits -----------------------------------------------------------------


def test_nesting_beyond_limit_is_a_defect_not_an_error() -> None:
    parsed = parse_message(_nested(40), max_depth=32)
    assert "MIME nesting deeper than 32 levels; not descended" in parsed.defects
    assert parsed.text_body is None
    assert parsed.attachments == []


def test_nesting_within_limit_reaches_the_text() -> None:
    parsed = parse_message(_nested(10), max_depth=32)
    assert parsed.text_body == "deep text\n"
    assert extract_attachment(_nested(10), ".".join(["1"] * 10)) == b"deep text\r\n"


def test_absurd_nesting_is_fast_and_safe() -> None:
    raw = _nested(5000)
    # CPU time of this process, not the wall clock: what is bounded is the parser's work
    # (about 0.15 s; a descent per level would be minutes), not how many other processes
    # share the machine (wall-clock bounds failed under load).
    start = time.process_time()
    parsed = parse_message(raw)
    assert time.process_time() - start < 5
    assert any("nesting deeper" in d for d in parsed.defects)


def test_deep_message_rfc822_chain() -> None:
    raw = b"Subject: inner\r\n\r\nbody\r\n"
    for _ in range(3000):
        raw = b"Content-Type: message/rfc822\r\n\r\n" + raw
    parsed = parse_message(b"From: a@example.com\r\n" + raw)
    assert isinstance(parsed, ParsedMessage)
    assert [a.content_type for a in parsed.attachments] == ["message/rfc822"]


def test_max_parts() -> None:
    parts = b"".join(b"--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(50))
    raw = b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n' + parts + b"--p--\r\n"
    parsed = parse_message(raw, max_parts=10)
    assert "more than 10 MIME parts; the rest were ignored" in parsed.defects
    assert parsed.text_body is not None
    assert "part 9" in parsed.text_body
    assert "part 10" not in parsed.text_body


# --- headers and bodies -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5.2", 5.2), (" 5.2 / 6.0", 5.2), ("-1.5", -1.5), ("garbage", None), ("5.2abc", None), ("", None)],
)
def test_spam_score(value: str, expected: float | None) -> None:
    raw = f"From: a@example.com\r\nX-Spam-Score: {value}\r\n\r\nx\r\n".encode()
    assert parse_message(raw).spam_score == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 5 Mar 2024 10:14:07 -0000", "2024-03-05T10:14:07+00:00"),
        ("2024-03-05T10:14:07+02:00", "2024-03-05T08:14:07+00:00"),
        ("Tue, 5 Mar 2024 10:14:07 +9900", None),
        ("Tue, 5 Mar 99999 10:14:07 +0000", None),
        ("", None),
    ],
)
def test_dates(value: str, expected: str | None) -> None:
    date = parse_message(f"Date: {value}\r\n\r\nx\r\n".encode()).date
    assert (date.isoformat() if date else None) == expected


def test_snippet_is_cut_at_a_word_boundary() -> None:
    body = " ".join(f"word{i}" for i in range(100))
    snippet = parse_message(f"Subject: x\r\n\r\n{body}\r\n".encode()).snippet
    assert len(snippet) <= 200
    assert body.startswith(snippet)
    assert body[len(snippet)] == " "


def test_snippet_of_only_quoted_text_shows_the_quote() -> None:
    parsed = parse_message(b"Subject: x\r\n\r\n> only a quote\r\n> here\r\n")
    assert parsed.snippet == "> only a quote > here"


def test_inline_text_parts_are_joined_with_a_blank_line() -> None:
    parsed = parse_message(_load("mixed_inline_text"))
    assert parsed.text_body is not None
    assert "#1234.\n\n____" in parsed.text_body


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00", b"\r", b"\n\n\n", b":", b"From:", b"Content-Type: multipart/mixed\r\n\r\n--\r\n",
     b"Content-Type: (" + b"(" * 3000 + b"\r\n\r\nbody", b"To: " + b"(" * 3000 + b"a@b.c\r\n\r\n",
     b"Subject: " + b"=?utf-8?q?x?= " * 5000 + b"\r\n\r\n", b"\xff" * 1000],
)  # fmt: skip
def test_hostile_inputs(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert isinstance(parsed, ParsedMessage)
    json.dumps(parsed.to_dict(), ensure_ascii=False).encode("utf-8")  # no surrogates anywhere


def test_long_address_list_uses_the_linear_fallback() -> None:
    recipients = ", ".join(f"User {i} <user{i}@Example.com>" for i in range(1500))  # ~50 KB
    start = time.process_time()  # the parser's work, whatever the machine's load
    parsed = parse_message(f"To: {recipients}\r\n\r\nx\r\n".encode())
    assert time.process_time() - start < 2
    assert len(parsed.to) == 1500
    assert parsed.to[-1] == Address(name="User 1499", email="user1499@example.com")
    assert parsed.defects == ["missing From", "missing Date", "missing Message-ID"]


def test_absurd_address_list_is_truncated_at_an_address() -> None:
    recipients = ", ".join(f"user{i}@example.com" for i in range(100_000))
    parsed = parse_message(f"Cc: {recipients}\r\n\r\nx\r\n".encode())
    assert "overlong Cc header truncated" in parsed.defects
    assert 3000 < len(parsed.cc) < 5000
    assert "invalid address in Cc" not in parsed.defects


# --- robustness ---------------------------------------------------------------


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0 and buf:  # flip bytes
        for _ in range(rng.randint(1, 20)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == 1:  # truncate
        del buf[rng.randrange(len(buf) + 1) :]
    elif kind == 2:  # splice random bytes in
        at = rng.randrange(len(buf) + 1)
        buf[at:at] = rng.randbytes(rng.randint(1, 200))
    elif kind == 3 and buf:  # delete a slice
        at = rng.randrange(len(buf))
        del buf[at : at + rng.randint(1, 100)]
    else:  # duplicate a slice (repeated headers, boundaries)
        at = rng.randrange(len(buf) + 1)
        buf[at:at] = buf[at : at + rng.randint(1, 300)] * rng.randint(1, 5)
    return bytes(buf)


def test_random_mutations_never_raise() -> None:
    rng = random.Random(20240305)
    corpus = [p.read_bytes() for p in EML_FILES]
    for _ in range(300):
        raw = _mutate(rng, rng.choice(corpus))
        if rng.random() < 0.3:
            raw = _mutate(rng, raw)
        start = time.process_time()  # the parser's work, whatever the machine's load
        parsed = parse_message(raw)
        elapsed = time.process_time() - start
        assert isinstance(parsed, ParsedMessage), raw
        assert elapsed < 2, raw
        json.dumps(parsed.to_dict(), ensure_ascii=False).encode("utf-8")
        assert not any("internal parser error" in d for d in parsed.defects), raw


# --- the everyday address fast path ------------------------------------------


def _stdlib_mailboxes(value: str) -> list[tuple[str, str, str]]:
    """What _headers._mailboxes did before its fast path: the stdlib's parsers only."""
    import email.utils
    from email import policy

    try:
        header = policy.default.header_factory("to", value)
        return [(m.display_name, m.username, m.domain) for g in header.groups for m in g.addresses]
    except Exception:
        triples = []
        for name, addr in email.utils.getaddresses([value]):
            local, _, domain = addr.rpartition("@")
            triples.append((name, local, domain))
        return triples


def _random_address_list(rng: random.Random) -> str:
    words = ["Ann", "J.", "O'Neil", "a.b", ".x", "x.", "=x", "?", "Zo~e", "", " ", "\t", "x,y"]
    locals_ = ["a", "a.b", "a..b", ".a", "a.", "a+tag", "o'neil", "x_y-z", "A=B", "{x}"]
    domains = ["example.org", "EXAMPLE.net", "b", "-b", "b.", "a-b.c-d", "b..c", "1.2.3.4"]
    members = []
    for _ in range(rng.randint(1, 3)):
        addr = f"{rng.choice(locals_)}@{rng.choice(domains)}"
        words_ = [rng.choice(words) for _ in range(rng.randint(0, 3))]
        name = " ".join(f'"{w}"' if rng.random() < 0.3 else w for w in words_)
        form = rng.randrange(4)
        member = addr if form == 0 else f"<{addr}>" if form == 1 else f"{name} <{addr}>"
        if form == 3:
            member = f"{name}<{addr}>"
        members.append(rng.choice(["", " ", "\t"]) + member + rng.choice(["", " ", "  "]))
    return rng.choice([",", ", ", " ,"]).join(members) + rng.choice(["", "", ",", " "])


def test_simple_address_lists_read_as_the_stdlib_reads_them() -> None:
    from mailroom.delivery._headers import _simple_mailboxes
    from mailroom.delivery._text import fold_whitespace

    rng = random.Random(5)
    taken = 0
    for _ in range(20_000):
        value = _random_address_list(rng)
        fast = _simple_mailboxes(value)
        if fast is None:
            continue
        taken += 1
        slow = _stdlib_mailboxes(value)
        # Names are whitespace-folded by the caller either way.
        assert [(fold_whitespace(n), lo, d) for n, lo, d in fast] == [
            (fold_whitespace(n), lo, d) for n, lo, d in slow
        ], value
    assert taken > 3_000  # the generator does exercise the fast path


@pytest.mark.parametrize(
    "value",
    [
        "Ann (work) <a@b.c>",
        "undisclosed-recipients:;",
        "=?utf-8?q?J=C3=B6rg?= <j@b.c>",
        '"a\\"b" <a@b.c>',
        "a@[127.0.0.1]",
        "a@b.c,,d@e.f",
        "a@b.c,",
        "Jörg <j@b.c>",
        "a@b c@d",
    ],
)
def test_anything_beyond_everyday_addresses_goes_to_the_stdlib(value: str) -> None:
    from mailroom.delivery._headers import _simple_mailboxes

    assert _simple_mailboxes(value) is None


def test_address_fast_path_is_linear_on_long_junk() -> None:
    from mailroom.delivery._headers import _simple_mailboxes

    started = time.process_time()  # the work done, whatever the machine's load
    assert _simple_mailboxes("a " * 30_000) is None
    assert _simple_mailboxes('"x" ' * 15_000 + "<") is None
    assert time.process_time() - started < 1.0
