"""The trace headers of a message (``Received``, ``Delivered-To``), read without a full parse.

Used for loop detection: a message that has passed too many hops is refused (like Postfix's
``hopcount_limit``), and forwarding is not repeated for a mailbox the message was already
delivered to (forwarding adds ``Delivered-To: <mailbox>``), so a forward chain that comes
back to us stops instead of circling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
