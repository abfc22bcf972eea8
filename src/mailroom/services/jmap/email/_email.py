"""An email as a JMAP Email object (RFC 8621 §4.1), from its record and, for the
properties that need them, its stored blob and MIME structure (never parsed again).

The Email is the message as it arrived: the ``Return-Path``/``Delivered-To``/``Received``
lines this server stores in front of it for IMAP and downloads are not part of it, so its
``blobId`` (``G<sha256>``: the shared blob) names exactly its bytes and ``size`` counts
them. A part's ``blobId`` is ``G<sha256>-<partId with dashes>`` (its decoded body;
email/blobs.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mailroom.domain import objectids
from mailroom.domain.mime import MimeStructure, Part, jmap
from mailroom.services.jmap._mailboxes import mailbox_id
from mailroom.services.jmap.email import blobs
from mailroom.store.jmap_emails import EmailRecord

BLOB_PREFIX = "G"

#: Every property (header:* forms besides), and the default of Email/get (RFC 8621 §4.2).
PROPERTIES = frozenset(
    {
        "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt", "messageId",
        "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo", "subject",
        "sentAt", "hasAttachment", "preview", "bodyValues", "textBody", "htmlBody", "attachments",
        "headers", "bodyStructure",
    }
)  # fmt: skip
DEFAULT_PROPERTIES = (
    "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt", "messageId",
    "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo", "subject",
    "sentAt", "hasAttachment", "preview", "bodyValues", "textBody", "htmlBody", "attachments",
)  # fmt: skip
#: Properties read from the database alone; anything else needs the blob and structure.
_FROM_RECORD = frozenset(
    {
        "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt", "inReplyTo",
        "references", "from", "to", "cc", "bcc", "replyTo", "subject", "sentAt", "hasAttachment",
        "preview",
    }
)  # fmt: skip


def email_id(record_id: int) -> str:
    return objectids.email_id(record_id)


def blob_id(sha: str) -> str:
    return f"{BLOB_PREFIX}{sha}"


def part_blob_id(sha: str, part: Part) -> str:
    return blobs.part_blob_id(blob_id(sha), part)


def needs_message(properties: Iterable[str], record: EmailRecord | None = None) -> bool:
    """Whether these properties need the blob and its structure."""
    for prop in properties:
        if prop not in _FROM_RECORD and not (
            prop == "messageId" and record is not None and _plain_id(record)
        ):
            return True
    return False


def _plain_id(record: EmailRecord) -> bool:
    # Ingest stores a huge Message-ID as a digest (delivery/ingest.id_key): read the header then.
    return record.message_id is None or not record.message_id.startswith("sha256:")


def keywords(record: EmailRecord) -> dict[str, bool]:
    out = {}
    if record.is_read:
        out["$seen"] = True
    if record.is_starred:
        out["$flagged"] = True
    if record.is_draft:
        out["$draft"] = True
    for keyword in record.keywords:
        out[keyword] = True
    return out


def utc_date(value: datetime) -> str:
    """A UTCDate (RFC 8620 §1.4): ``2026-12-05T10:00:00Z``."""
    if value.tzinfo is not UTC:  # the store's datetimes are UTC already
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    # isoformat, not strftime: a third of the time, and the year always has four digits.
    return value.isoformat()[:19] + "Z"


def _addresses(values: tuple[dict[str, str], ...]) -> list[dict[str, Any]] | None:
    if not values:
        return None
    return [{"name": a.get("name") or None, "email": a.get("email", "")} for a in values]


def _size(record: EmailRecord) -> int:
    return record.size - len((record.trace or "").encode("utf-8"))


#: How each property read from the record alone is made (``messageId`` is not here: a
#: digest stored for a huge Message-ID is read from the header instead).
_BY_RECORD: dict[str, Callable[[EmailRecord], Any]] = {
    "id": lambda r: email_id(r.id),
    "blobId": lambda r: blob_id(r.blob_sha),
    "threadId": lambda r: objectids.thread_id(r.thread_id),
    "mailboxIds": lambda r: {mailbox_id(label): True for label in r.label_ids},
    "keywords": keywords,
    "size": _size,
    "receivedAt": lambda r: utc_date(r.received_at),
    "inReplyTo": lambda r: list(r.in_reply_to) or None,
    "references": lambda r: list(r.references) or None,
    "from": lambda r: _addresses(r.from_),
    "to": lambda r: _addresses(r.to),
    "cc": lambda r: _addresses(r.cc),
    "bcc": lambda r: _addresses(r.bcc),
    "replyTo": lambda r: _addresses(r.reply_to),
    "subject": lambda r: r.subject or None,  # the store keeps "" for a missing Subject
    "sentAt": lambda r: r.date.isoformat() if r.date is not None else None,
    "hasAttachment": lambda r: r.has_attachments,
    "preview": lambda r: jmap.preview(r.snippet),
}


def record_renderer(properties: Sequence[str]) -> Callable[[EmailRecord], dict[str, Any]] | None:
    """A function making Emails with ``properties`` from records alone, or None when one of
    them needs more (the message, or a header): then use :func:`email_object`. The same
    values as :func:`email_object`, without deciding how to make each property per email."""
    makers = [(prop, _BY_RECORD.get(prop)) for prop in properties]
    if not all(make is not None for _, make in makers):
        return None
    pairs: list[tuple[str, Callable[[EmailRecord], Any]]] = makers  # type: ignore[assignment]

    def render(record: EmailRecord) -> dict[str, Any]:
        return {prop: make(record) for prop, make in pairs}

    return render


@dataclass(frozen=True, slots=True)
class BodyOptions:
    """Email/get's body arguments."""

    body_properties: tuple[str, ...] = jmap.DEFAULT_BODY_PROPERTIES
    fetch_text: bool = False
    fetch_html: bool = False
    fetch_all: bool = False
    max_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Message:
    """The stored message behind a record: its blob and structure."""

    blob: bytes
    structure: MimeStructure


def email_object(
    record: EmailRecord, properties: Iterable[str], message: Message | None, options: BodyOptions
) -> dict[str, Any]:
    """The Email with ``properties`` (``message`` must be given when `needs_message`)."""
    out: dict[str, Any] = {}
    fields: list[tuple[str, bytes]] | None = None
    lists: tuple[list[Part], list[Part], list[Part]] | None = None

    def root_fields() -> list[tuple[str, bytes]]:
        nonlocal fields
        assert message is not None
        if fields is None:
            fields = jmap.header_fields(message.blob, message.structure.root)
        return fields

    def body_lists() -> tuple[list[Part], list[Part], list[Part]]:
        nonlocal lists
        assert message is not None
        if lists is None:
            lists = jmap.body_lists(message.structure)
        return lists

    def blob_of(part: Part) -> str:
        return part_blob_id(record.blob_sha, part)

    def parts(items: list[Part]) -> list[dict[str, Any]]:
        assert message is not None
        return [jmap.body_part(p, message.blob, blob_of, options.body_properties) for p in items]

    for prop in properties:
        make = _BY_RECORD.get(prop)
        if make is not None:
            out[prop] = make(record)
        elif prop == "messageId":
            if _plain_id(record):
                out[prop] = [record.message_id] if record.message_id else None
            else:
                out[prop] = jmap.header_value(root_fields(), jmap.HeaderProperty("Message-ID", "MessageIds"))
        elif prop == "sender":
            out[prop] = jmap.header_value(root_fields(), jmap.HeaderProperty("Sender", "Addresses"))
        elif prop == "headers":
            out[prop] = jmap.headers_list(root_fields())
        elif prop.startswith("header:"):
            header = jmap.parse_header_property(prop)
            out[prop] = jmap.header_value(root_fields(), header) if header is not None else None
        elif prop == "bodyStructure":
            assert message is not None
            out[prop] = jmap.body_part(message.structure.root, message.blob, blob_of, options.body_properties)
        elif prop == "textBody":
            out[prop] = parts(body_lists()[0])
        elif prop == "htmlBody":
            out[prop] = parts(body_lists()[1])
        elif prop == "attachments":
            out[prop] = parts(body_lists()[2])
        elif prop == "bodyValues":
            out[prop] = _body_values(message, body_lists, options) if message is not None else {}
    return out


#: Email/parse's default properties (RFC 8621 §4.9): no metadata, the message alone.
PARSE_DEFAULT_PROPERTIES = (
    "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo",
    "subject", "sentAt", "hasAttachment", "preview", "bodyValues", "textBody", "htmlBody", "attachments",
)  # fmt: skip
_PARSE_FORMS = {
    "messageId": ("Message-ID", "MessageIds"),
    "inReplyTo": ("In-Reply-To", "MessageIds"),
    "references": ("References", "MessageIds"),
    "sender": ("Sender", "Addresses"),
    "from": ("From", "Addresses"),
    "to": ("To", "Addresses"),
    "cc": ("Cc", "Addresses"),
    "bcc": ("Bcc", "Addresses"),
    "replyTo": ("Reply-To", "Addresses"),
    "subject": ("Subject", "Text"),
    "sentAt": ("Date", "Date"),
}


def parsed_object(
    sha: str, blob_id_value: str, message: Message, properties: Iterable[str], options: BodyOptions
) -> dict[str, Any]:
    """Email/parse: an Email made of a message blob alone (metadata properties are null)."""
    fields = jmap.header_fields(message.blob, message.structure.root)
    text, html, attachments = jmap.body_lists(message.structure)

    def blob_of(part: Part) -> str:
        # Parts of an attached message (G<sha>-N) are N.<their number> of the stored one.
        return blobs.part_blob_id(blob_id_value, part)

    out: dict[str, Any] = {}
    for prop in properties:
        if prop in _PARSE_FORMS:
            name, form = _PARSE_FORMS[prop]
            out[prop] = jmap.header_value(fields, jmap.HeaderProperty(name, form))  # type: ignore[arg-type]
        elif prop in ("id", "threadId", "mailboxIds", "keywords", "receivedAt"):
            out[prop] = None
        elif prop == "blobId":
            out[prop] = blob_id_value
        elif prop == "size":
            out[prop] = message.structure.size
        elif prop == "hasAttachment":
            out[prop] = any(p.disposition == "attachment" or p.filename for p in attachments)
        elif prop == "preview":
            out[prop] = _preview(message, text, html)
        elif prop == "headers":
            out[prop] = jmap.headers_list(fields)
        elif prop.startswith("header:"):
            header = jmap.parse_header_property(prop)
            out[prop] = jmap.header_value(fields, header) if header is not None else None
        elif prop == "bodyStructure":
            out[prop] = jmap.body_part(message.structure.root, message.blob, blob_of, options.body_properties)
        elif prop in ("textBody", "htmlBody", "attachments"):
            chosen = {"textBody": text, "htmlBody": html, "attachments": attachments}[prop]
            out[prop] = [jmap.body_part(p, message.blob, blob_of, options.body_properties) for p in chosen]
        elif prop == "bodyValues":
            out[prop] = _body_values(message, lambda: (text, html, attachments), options)
    return out


def _preview(message: Message, text: list[Part], html: list[Part]) -> str:
    for part in text:
        if part.media_type == "text/plain":
            return jmap.preview(jmap.body_value(part, message.blob, 4096)["value"])
    for part in html:
        if part.media_type == "text/html":
            return jmap.preview(jmap.body_value(part, message.blob, 16384)["value"], html=True)
    return ""


def _body_values(message: Message, body_lists: Any, options: BodyOptions) -> dict[str, dict[str, Any]]:
    chosen: list[Part] = []
    if options.fetch_all:
        chosen = [p for p in message.structure.root.walk() if p.type == "text" and not p.is_multipart]
        chosen = [p for p in chosen if _outside_nested(message.structure.root, p)]
    else:
        text, html, _ = body_lists()
        if options.fetch_text:
            chosen += text
        if options.fetch_html:
            chosen += html
    values: dict[str, dict[str, Any]] = {}
    for part in chosen:
        if part.type == "text" and part.section not in values:
            values[part.section] = jmap.body_value(part, message.blob, options.max_bytes)
    return values


def _outside_nested(root: Part, wanted: Part) -> bool:
    """Whether ``wanted`` is a part of this message rather than of a message/rfc822 in it
    (JMAP does not look inside attached messages)."""
    stack = [root]
    while stack:
        part = stack.pop()
        if part is wanted:
            return True
        stack.extend(part.parts)
    return False
