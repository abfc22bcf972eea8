"""The trace headers of a message (``Received``, ``Delivered-To``): read without a full parse,
and written at ingest (:class:`TraceStamp`).

Used for loop detection: a message that has passed too many hops is refused (like Postfix's
``hopcount_limit``), and forwarding is not repeated for a mailbox the message was already
delivered to (forwarding adds ``Delivered-To: <mailbox>``), so a forward chain that comes
back to us stops instead of circling.

Ingest puts ``Return-Path``, ``Delivered-To`` and a ``Received`` line (RFC 5321 §4.4: from
the client's HELO name and IP address, by our host name, with the protocol, an id, for the
mailbox's address, the date) in front of every message it stores for a mailbox. They are
made once per message and per mailbox without parsing anything and kept in the email's row
(``emails.trace``), not in the blob: the blob is content-addressed and written once for
every mailbox of one arrival, and ``Delivered-To`` differs per mailbox. The stored message
(``GET /emails/{id}/raw``, its headers) is the trace followed by the blob.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

_HEADER = re.compile(rb"^(received|delivered-to)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
_ANGLE = re.compile(r"<([^<>]*)>")


@dataclass(frozen=True, slots=True)
class Trace:
    received: int
    delivered_to: frozenset[str]


def header_block(raw: bytes) -> bytes:
    match = _END_OF_HEADERS.search(raw)
    return raw[: match.start()] if match else raw


def read_trace(raw: bytes) -> Trace:
    """Count ``Received`` headers and collect ``Delivered-To`` addresses (lower-cased)."""
    received = 0
    delivered: set[str] = set()
    for match in _HEADER.finditer(header_block(raw)):
        if match.group(1).lower() == b"received":
            received += 1
            continue
        value = match.group(2).decode("utf-8", "replace").strip()
        angle = _ANGLE.search(value)
        address = (angle.group(1) if angle else value).strip().lower()
        if address:
            delivered.add(address)
    return Trace(received=received, delivered_to=frozenset(delivered))


# -- the trace headers ingest writes ------------------------------------------------------

#: The ``with`` protocol (RFC 5321 §4.4, the IANA Mail Transmission Types) when the source
#: says no more: SMTP and LMTP listeners pass the session's own (ESMTPS, ...).
DEFAULT_PROTOCOL = {"smtp": "SMTP", "lmtp": "LMTP", "submission": "ESMTPSA", "api": "HTTP", "import": "local"}
_HELO_UNSAFE = re.compile(r"[^A-Za-z0-9.:\[\]_-]")
_ADDRESS_UNSAFE = re.compile(r"[\x00-\x20<>\x7f]")


@dataclass(frozen=True, slots=True)
class Arrival:
    """Who handed a message over, for its ``Received`` line: the protocol as RFC 5321 and
    RFC 3848 name it (SMTP, ESMTP, ESMTPS, ESMTPSA, LMTP, ...), the client's HELO/EHLO name
    and its IP address."""

    protocol: str
    helo: str | None = None
    peer_ip: str | None = None


_date_cache: tuple[float, str] = (-1.0, "")


def rfc5322_date(now: datetime) -> str:
    """``Sat, 05 Dec 2026 12:00:00 +0000`` for ``now`` (whole seconds). The last one is kept:
    formatting costs more than the rest of the trace, and arrivals share their second."""
    global _date_cache
    second = now.timestamp() // 1
    if _date_cache[0] != second:
        _date_cache = (second, format_datetime(now.replace(microsecond=0)))
    return _date_cache[1]


def _address(value: str) -> str:
    return _ADDRESS_UNSAFE.sub("", value)[:320]


@dataclass(frozen=True, slots=True)
class TraceStamp:
    """What every mailbox's trace of one arrival shares: made once per message, so each
    mailbox only adds its own address (:meth:`lines`)."""

    return_path: str
    received_head: str  # "Received: from ... by ... with ... id ..."
    date: str
    eol: str

    @classmethod
    def make(
        cls, *, raw: bytes, mail_from: str, arrival: Arrival, host: str, id_: str, date: str
    ) -> TraceStamp:
        helo = _HELO_UNSAFE.sub("", arrival.helo or "")[:255] or "unknown"
        tcp_info = ""
        if arrival.peer_ip:
            ip = _HELO_UNSAFE.sub("", arrival.peer_ip)[:64]
            tcp_info = f" ([IPv6:{ip}])" if ":" in ip else f" ([{ip}])"
        protocol = _HELO_UNSAFE.sub("", arrival.protocol)[:16] or "SMTP"
        eol = "\r\n" if b"\r\n" in raw[:4096] or b"\n" not in raw[:4096] else "\n"
        head = f"Received: from {helo}{tcp_info}{eol}\tby {host} with {protocol} id {id_}"
        return cls(f"Return-Path: <{_address(mail_from)}>{eol}", head, date, eol)

    def lines(self, rcpt: str) -> str:
        """``Return-Path``, ``Delivered-To`` and ``Received`` for the mailbox ``rcpt`` reached,
        newest first as RFC 5321 §4.4 prepends them."""
        rcpt = _address(rcpt)
        eol = self.eol
        return (
            f"{self.return_path}Delivered-To: {rcpt}{eol}"
            f"{self.received_head}{eol}\tfor <{rcpt}>; {self.date}{eol}"
        )
