"""The pure parts of outbound mail: SRS, headers added before sending, replies, DSNs, backoff."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from mailroom.delivery import srs
from mailroom.delivery.dsn import FailedRecipient, status_code
from mailroom.delivery.queue import backoff
from mailroom.delivery.relay import parse_smarthost
from mailroom.delivery.replies import reply_subject
from mailroom.delivery.senders import _SIMPLE_MAILBOX, aligned_domain, header_senders, parsed_addresses
from mailroom.delivery.signing import complete_headers
from mailroom.settings import Settings

SECRET = b"test-secret"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_srs_round_trip() -> None:
    rewritten = srs.forward("Bob@Remote.Example", "fwd.example", SECRET, NOW)
    assert rewritten.startswith("SRS0=")
    assert rewritten.endswith("=Remote.Example=Bob@fwd.example")
    assert srs.reverse(rewritten, SECRET, NOW + timedelta(days=3)) == "Bob@Remote.Example"


def test_srs_refuses_forged_and_expired_addresses() -> None:
    rewritten = srs.forward("bob@remote.example", "fwd.example", SECRET, NOW)
    assert srs.reverse(rewritten, b"other-secret", NOW) is None
    forged = rewritten.replace("=bob@", "=eve@")
    assert srs.reverse(forged, SECRET, NOW) is None
    assert srs.reverse(rewritten, SECRET, NOW + timedelta(days=srs.MAX_AGE_DAYS + 1)) is None
    assert srs.reverse("bob@remote.example", SECRET, NOW) is None


def test_srs_keeps_the_null_sender_and_wraps_srs0_in_srs1() -> None:
    assert srs.forward("", "fwd.example", SECRET, NOW) == ""
    first = srs.forward("bob@remote.example", "first.example", b"their-secret", NOW)
    second = srs.forward(first, "second.example", SECRET, NOW)
    assert second.startswith("SRS1=")
    assert "=first.example==" in second
    assert second.endswith("@second.example")
    # Reversing our SRS1 gives the first forwarder's SRS0 address back.
    assert srs.reverse(second, SECRET, NOW) == first
    third = srs.forward(second, "third.example", b"third", NOW)
    assert third.startswith("SRS1=")
    assert "=first.example==" in third
    assert srs.reverse(third, b"third", NOW) == first


def test_message_id_and_date_are_added_only_when_missing() -> None:
    bare = b"From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n"
    completed, message_id = complete_headers(bare, hostname="mail.example.org", now=NOW)
    assert message_id is not None
    assert message_id.endswith("@mail.example.org>")
    head, body = completed.split(b"\r\n\r\n", 1)
    assert b"\r\nDate: Sun, 01 Mar 2026 12:00:00 +0000" in head
    assert f"\r\nMessage-ID: {message_id}".encode() in head
    assert body == b"body\r\n"
    full = b"From: a@example.org\r\nDate: Mon, 2 Mar 2026 1:00:00 +0000\r\nMessage-ID: <k@x>\r\n\r\nbody\r\n"
    assert complete_headers(full, hostname="mail.example.org", now=NOW) == (full, "<k@x>")


def test_aligned_domain_is_the_one_domain_of_one_from_line() -> None:
    assert aligned_domain(b'From: "Alice" <alice@Example.ORG>\r\n\r\n') == "example.org"
    assert aligned_domain(b"From: a@example.org,\r\n b@Example.org\r\n\r\n") == "example.org"
    assert aligned_domain(b"Subject: none\r\n\r\n") is None
    # Two domains, two From lines, or a From the parsers read differently: no one domain.
    assert aligned_domain(b"From: a@example.org, b@cli.test\r\n\r\n") is None
    assert aligned_domain(b"From: a@example.org\r\nFrom: a@example.org\r\n\r\n") is None
    assert aligned_domain(b"From: a@example.org <d@cli.test>\r\n\r\n") is None


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"From: Alice <Alice@Example.org>", [("from", ("alice@example.org",))]),
        (
            b"FROM: a@example.org\r\nSender: b@example.org",
            [("from", ("a@example.org",)), ("sender", ("b@example.org",))],
        ),
        # Folded, and with the space before the colon RFC 5322's obsolete syntax allows (the
        # stdlib's message parser skips that line; some clients show it).
        (b"From:\r\n  dave@cli.test", [("from", ("dave@cli.test",))]),
        (b"From : dave@cli.test", [("from", ("dave@cli.test",))]),
        (b"From: a@example.org (b@cli.test), c@cli.test", [("from", ("a@example.org", "c@cli.test"))]),
        # What mail clients write: quoted names with commas, encoded words, UTF-8.
        (b'From: "Smith, Alice" <alice@example.org>', [("from", ("alice@example.org",))]),
        (b"From: =?utf-8?q?Al=C3=AFce?= <alice@example.org>", [("from", ("alice@example.org",))]),
        ("From: Alïce Ünïcode <alice@example.org>".encode(), [("from", ("alice@example.org",))]),
        # Read differently by the two stdlib parsers, names no mailbox, or not an address.
        (b"From: alice@example.org <dave@cli.test>", [("from", None)]),
        (b"From: undisclosed:;", [("from", None)]),
        (b"From: alice", [("from", None)]),
        (b'From: "a@b"@cli.test', [("from", None)]),
        (b"Subject: From: dave@cli.test", []),
    ],
)
def test_header_senders(head: bytes, expected: list[tuple[str, tuple[str, ...] | None]]) -> None:
    found = header_senders(head + b"\r\n\r\nFrom: body@cli.test\r\n")
    assert [(h.field, h.addresses) for h in found] == expected


_NAMES = ["", "Alice", "Alice Smith", " John Q Public ", "o'Brien", "a-b_c", "x\t", "Jo-\tAnn 2"]
_ADDRESSES = ["alice@example.org", "Alice@Example.ORG", "a.b+c@x.example", "a!#$%&'*+/=?^_`{|}~-@x.example"]
_ADDRESSES += [".alice@x.example", "a..b@x.example", "alice@-x.example", "alice@x", "alice@x..example"]


@pytest.mark.parametrize(
    "value",
    [f"{name}<{a}>" for name, a in itertools.product(_NAMES, _ADDRESSES)]
    + [f"{name} <{a}> " for name, a in itertools.product(_NAMES, _ADDRESSES)]
    + [f" {a} " for a in _ADDRESSES],
)
def test_the_short_way_reads_simple_froms_as_both_parsers_do(value: str) -> None:
    """A From of the simple shape is read without the parsers; it must be read alike."""
    assert _SIMPLE_MAILBOX.fullmatch(value.strip()) is not None
    [line] = header_senders(f"From: {value}\r\n\r\n".encode())
    assert line.addresses == parsed_addresses(value.strip())


def test_reply_subject() -> None:
    assert reply_subject("", "Lunch?") == "Re: Lunch?"
    assert reply_subject(None, "Re: Lunch?") == "Re: Lunch?"
    assert reply_subject("Away", "Lunch?") == "Away"
    assert reply_subject("", "") == "Re: your message"


def test_dsn_status_codes() -> None:
    assert status_code(FailedRecipient("a@x", 550, "550 5.1.1 no such user")) == "5.1.1"
    assert status_code(FailedRecipient("a@x", 550, "550 no such user")) == "5.0.0"
    assert status_code(FailedRecipient("a@x", 451, "451 busy")) == "4.4.7"
    assert status_code(FailedRecipient("a@x", None, "connection refused")) == "4.4.7"


def test_backoff_doubles_up_to_the_maximum() -> None:
    settings = Settings(queue_retry_base_seconds=60, queue_retry_max_seconds=4 * 3600)
    delays = [backoff(settings, n).total_seconds() for n in range(1, 11)]
    assert delays[:5] == [60, 120, 240, 480, 960]
    assert delays[-1] == 4 * 3600
    assert max(delays) == 4 * 3600


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("relay.example", ("relay.example", 25)),
        ("relay.example:2525", ("relay.example", 2525)),
        ("[2001:db8::1]", ("2001:db8::1", 25)),
        ("[2001:db8::1]:587", ("2001:db8::1", 587)),
    ],
)
def test_parse_smarthost(value: str, expected: tuple[str, int]) -> None:
    assert parse_smarthost(value) == expected
