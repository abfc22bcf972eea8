"""What outbound mail gets before it leaves: Message-ID and Date when missing, a DKIM signature.

Signing uses dkimpy with relaxed/relaxed canonicalisation (survives the header folding and
whitespace changes relays make) over the headers that identify and describe a message
(:data:`SIGNED_HEADERS`; each is signed only when present, as dkimpy does).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import datetime
from email.headerregistry import Address
from email.parser import BytesHeaderParser
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime

import dkim

SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"sender",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"to",
    b"cc",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"in-reply-to",
    b"references",
    b"list-id",
    b"list-unsubscribe",
    b"auto-submitted",
)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    """(header block with its final line break, the rest starting at the blank line)."""
    match = _HEADER_END.search(raw)
    if match is None:
        return raw, b""
    cut = match.start() + (2 if raw[match.start() : match.start() + 2] == b"\r\n" else 1)
    return raw[:cut], raw[cut:]


def _has_header(head: bytes, name: bytes) -> bool:
    return re.search(rb"(?im)^" + re.escape(name) + rb"[ \t]*:", head) is not None


def new_message_id(hostname: str) -> str:
    return f"<{secrets.token_hex(12)}@{hostname}>"


def complete_headers(raw: bytes, *, hostname: str, now: datetime) -> tuple[bytes, str | None]:
    """Add ``Message-ID`` and ``Date`` when missing; returns the message and its Message-ID."""
    head, body = split_head(raw)
    eol = b"\r\n" if b"\r\n" in head else b"\n"
    extra = b""
    if not _has_header(head, b"date"):
        extra += b"Date: " + format_datetime(now).encode("ascii") + eol
    message_id = header_value(head, "message-id")
    if message_id is None:
        message_id = new_message_id(hostname)
        extra += b"Message-ID: " + message_id.encode("ascii") + eol
    if not head.endswith(eol) and head:
        head += eol
    return head + extra + body, message_id


def header_value(raw_or_head: bytes, name: str) -> str | None:
    """One header's value (unfolded, stripped), or None."""
    head, _ = split_head(raw_or_head)
    parsed = BytesHeaderParser(policy=SMTP_POLICY).parsebytes(head)
    value = parsed.get(name)
    return None if value is None else " ".join(str(value).split())


def format_address(name: str | None, address: str) -> str:
    """``Name <local@domain>`` with the name quoted or encoded as needed."""
    local, _, domain = address.rpartition("@")
    return str(Address(display_name=name or "", username=local, domain=domain))


def dkim_sign_sync(raw: bytes, *, domain: str, selector: str, private_pem: str) -> bytes:
    """``raw`` with a DKIM-Signature header prepended (relaxed/relaxed, rsa-sha256)."""
    eol = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
    signature = dkim.sign(
        raw,
        selector.encode("ascii"),
        domain.encode("ascii"),
        private_pem.encode("ascii"),
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=list(SIGNED_HEADERS),
        linesep=eol,
    )
    return bytes(signature) + raw


async def dkim_sign(raw: bytes, *, domain: str, selector: str, private_pem: str) -> bytes:
    """:func:`dkim_sign_sync` in a worker thread (hashing a large body takes a while)."""
    return await asyncio.to_thread(
        dkim_sign_sync, raw, domain=domain, selector=selector, private_pem=private_pem
    )
