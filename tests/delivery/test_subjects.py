"""Tests for mailroom.delivery.subjects: threading keys and message-id lists."""

from __future__ import annotations

import pytest

from mailroom.delivery.subjects import clean_message_id, is_reply_subject, normalize_subject, parse_id_list


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hello", "hello"),
        ("Re: Hello", "hello"),
        ("RE : Hello", "hello"),
        ("re:hello", "hello"),
        ("Re: Re: RE: Hello", "hello"),
        ("Fwd: Hello", "hello"),
        ("FW: Hello", "hello"),
        ("Fw: Re: Hello", "hello"),
        ("AW: WG: Hello", "hello"),
        ("SV: VS: Hello", "hello"),
        ("Antw: Hello", "hello"),
        ("R: RIF: Hello", "hello"),
        ("TR: Réf: Hello", "hello"),
        ("RÉF : Hello", "hello"),
        ("回复: 你好", "你好"),
        ("转发：你好", "你好"),  # full-width colon
        ("Re[2]: Hello", "hello"),
        ("Re^3: Hello", "hello"),
        ("Re(4): Hello", "hello"),
        ("RE [5] : Hello", "hello"),
        ("[list-name] Re: Hello", "hello"),
        ("Re: [list-name] Re: Hello", "hello"),
        ("[a] [b] Hello", "hello"),
        ("Hello (fwd)", "hello"),
        ("Fwd: Hello (FWD) (fwd)", "hello"),
        ("  Hello \t  world  ", "hello world"),
        ("Hello\r\n world", "hello world"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),  # casefold, not lower
        ("Re:", ""),
        ("", ""),
        ("[only-a-tag]", ""),
        # Words that merely start like a prefix are left alone.
        ("Reply needed", "reply needed"),
        ("Re-release of 2.0", "re-release of 2.0"),
        ("Fwd-thinking: ideas", "fwd-thinking: ideas"),
        ("Rebase: done", "rebase: done"),
        ("Hello [draft]", "hello [draft]"),
        ("Meeting re: budget", "meeting re: budget"),
    ],
)
def test_normalize_subject(subject: str, expected: str) -> None:
    assert normalize_subject(subject) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Hello", True),
        ("RE: Hello", True),
        ("AW: Hello", True),
        ("Re[2]: Hello", True),
        ("[list] Re: Hello", True),
        ("回复: 你好", True),
        ("Hello", False),
        ("Fwd: Hello", False),
        ("Fwd: Re: Hello", False),
        ("Reply needed", False),
        ("", False),
    ],
)
def test_is_reply_subject(subject: str, expected: bool) -> None:
    assert is_reply_subject(subject) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@example.com>", ["a@example.com"]),
        ("<a@example.com> <b@example.com>", ["a@example.com", "b@example.com"]),
        ("<a@example.com>,<b@example.com>", ["a@example.com", "b@example.com"]),
        ("<a@example.com>\r\n\t<b@example.com>", ["a@example.com", "b@example.com"]),
        ("<a@example.com> <b@example.com> <a@example.com>", ["a@example.com", "b@example.com"]),
        ("a@example.com b@example.com", ["a@example.com", "b@example.com"]),
        ("a@example.com, b@example.com", ["a@example.com", "b@example.com"]),
        ("<a@example.com> (comment <c@example.com>) <b@example.com>", ["a@example.com", "b@example.com"]),
        ("(nested (comment) here) <a@example.com>", ["a@example.com"]),
        ('<a@example.com> (Jo\'s message of "Mon, 1 Jan 2024")', ["a@example.com"]),
        ('Your message of "Mon, 1 Jan 2024" <a@example.com>', ["a@example.com"]),
        ("< a@example.com >", ["a@example.com"]),
        ("<a@exam\r\n ple.com>", ["a@example.com"]),
        ("<1234567@>", ["1234567@"]),
        ("<no-at-sign>", ["no-at-sign"]),
        ("no-at-sign", []),
        ("<a@example.com", ["a@example.com"]),  # truncated
        ("<>", []),
        ("", []),
        ("   ", []),
        ("<" + "x" * 2000 + "@example.com>", []),
    ],
)
def test_parse_id_list(value: str, expected: list[str]) -> None:
    assert parse_id_list(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@example.com>", "a@example.com"),
        ("  <a@example.com>  ", "a@example.com"),
        ("<a@example.com> (added by relay)", "a@example.com"),
        ("a@example.com", "a@example.com"),
        ("<a @ example.com>", "a@example.com"),
        ("<a@example.com> <b@example.com>", "a@example.com"),
        ("no-at-sign", "no-at-sign"),
        ('"a@example.com"', "a@example.com"),
        ("<>", None),
        ("", None),
        ("(just a comment)", None),
    ],
)
def test_clean_message_id(value: str, expected: str | None) -> None:
    assert clean_message_id(value) == expected
