"""SORT and THREAD (RFC 5256) over the selected mailbox.

The sort keys come from the stored envelope (domain/mime: no message is parsed): DATE is
the Date header (the arrival time when it has none or it does not parse), SUBJECT the base
subject (RFC 5256 2.1: ``Re:``, ``Fwd:``, ``[fwd: ...]`` and blobs removed, case folded),
FROM/TO/CC the first address's mailbox part. Ties go by sequence number.

THREAD=REFERENCES is RFC 5256's tree (``_threading``), built from the Message-ID,
In-Reply-To and References ingest stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime

from mailroom.domain.mime import Envelope
from mailroom.frontends.imap._mailbox import Message
from mailroom.frontends.imap._parser import ParseError

KEYS = frozenset(
    ("ARRIVAL", "CC", "DATE", "FROM", "REVERSE", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO")
)
#: (A subj-blob holds no "[" nor "]": RFC 5256 §5 BLOBCHAR.)
_PREFIX = re.compile(r"^\s*((re|fwd?)\s*(\[[^\[\]]*\])?\s*:\s*|\[[^\[\]]*\]\s*)", re.IGNORECASE)
_TRAILER = re.compile(r"\s*\(fwd\)\s*$", re.IGNORECASE)


def criteria(items: list[str]) -> list[tuple[str, bool]]:
    """``[(key, reverse)]`` from a SORT criteria list."""
    out: list[tuple[str, bool]] = []
    reverse = False
    for item in items:
        key = item.upper()
        if key not in KEYS:
            raise ParseError(f"unknown sort key {key[:20]}")
        if key == "REVERSE":
            if reverse:
                raise ParseError("REVERSE twice")
            reverse = True
            continue
        out.append((key, reverse))
        reverse = False
    if reverse or not out:
        raise ParseError("sort criteria incomplete")
    return out


def decoded(value: str | None) -> str:
    if not value:
        return ""
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeDecodeError):
        return value


def base_subject(value: str | None) -> str:
    """RFC 5256's base subject, case folded."""
    return subject_info(value)[0]


def subject_info(value: str | None) -> tuple[str, bool]:
    """RFC 5256's base subject, case folded, and whether the extraction removed a reply or
    forward marker (``Re:``, ``Fwd:``, ``(fwd)``, ``[fwd: ...]``): THREAD's "is a reply"."""
    text = " ".join(decoded(value).split())
    reply = False
    while True:
        before = text
        text, trailers = _TRAILER.subn("", text)
        reply = reply or bool(trailers)
        match = _PREFIX.match(text)
        # A leading [blob] goes only when something is left (RFC 5256 §2.1 (4)).
        if match is not None and (match.group(2) is not None or text[match.end() :]):
            reply = reply or match.group(2) is not None
            text = text[match.end() :]
        if text.lower().startswith("[fwd:") and text.endswith("]"):
            text = text[5:-1].strip()
            reply = True
        if text == before:
            # i;unicode-casemap compares titlecase (RFC 5051): "_" after the letters, as in Dovecot.
            return text.casefold().upper(), reply


def sent(envelope: Envelope | None, message: Message) -> float:
    if envelope is not None and envelope.date:
        try:
            when = parsedate_to_datetime(envelope.date)
            return when.timestamp() if when.tzinfo else when.replace(tzinfo=None).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return float(message.received)


def _address(addresses: tuple[object, ...], display: bool) -> str:
    if not addresses:
        return ""
    first = addresses[0]
    if display and getattr(first, "name", None):
        return decoded(getattr(first, "name", "")).casefold()
    return str(getattr(first, "mailbox", "") or "").casefold()


def key_of(key: str, envelope: Envelope | None, message: Message) -> object:
    if key == "ARRIVAL":
        return message.received
    if key == "SIZE":
        return message.size
    if key == "DATE":
        return sent(envelope, message)
    if envelope is None:
        return ""
    if key == "SUBJECT":
        return base_subject(envelope.subject)
    if key in ("FROM", "DISPLAYFROM"):
        return _address(envelope.from_, key == "DISPLAYFROM")
    if key in ("TO", "DISPLAYTO"):
        return _address(envelope.to, key == "DISPLAYTO")
    return _address(envelope.cc, False)


class _Reversed:
    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return bool(other.value < self.value)  # type: ignore[operator]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def sort(
    uids: list[int],
    messages: Mapping[int, Message],
    envelopes: dict[int, Envelope],
    keys: list[tuple[str, bool]],
    seq_of: dict[int, int],
) -> list[int]:
    def sort_key(uid: int) -> tuple[object, ...]:
        message = messages[uid]
        envelope = envelopes.get(message.email_id)
        parts: list[object] = []
        for key, reverse in keys:
            value = key_of(key, envelope, message)
            parts.append(_Reversed(value) if reverse else value)
        parts.append(seq_of[uid])
        return tuple(parts)

    return sorted(uids, key=sort_key)


__all__ = ["KEYS", "base_subject", "criteria", "sent", "sort", "subject_info"]
