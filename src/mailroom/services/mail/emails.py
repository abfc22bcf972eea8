"""mail.emails.*: one email (headers, addresses, bodies, attachments), its raw form, attachments.

Bodies and attachments are not in the database: they are read from the raw message in the
blob store and parsed (delivery/parse.py) when asked for. ``html_body`` is the sender's HTML
as it came: a client must sanitise it before showing it.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from mailroom.delivery.parse import extract_attachment, parse_message
from mailroom.domain.numbers import Id, Index
from mailroom.errors import NotFound
from mailroom.registry import GET, Context, Download, UserSelf
from mailroom.runtime import Runtime
from mailroom.services.mail._api import api
from mailroom.services.mail._mailbox import Address, user_id_of
from mailroom.store import emails as email_store
from mailroom.store import imap as imap_store
from mailroom.store.blobs import BlobNotFound
from mailroom.store.emails import StoredEmail

#: A media type we pass on as it is; anything else is sent as application/octet-stream.
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
#: Sender-controlled bytes: browsers must not sniff them into HTML or run them.
_UNTRUSTED = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
#: Larger messages are parsed in a worker thread, so the event loop keeps serving.
_PARSE_INLINE_BYTES = 256 * 1024
#: Headers beyond this many are not returned (a hostile message may carry thousands).
MAX_HEADERS = 500


class Attachment(BaseModel):
    """A MIME part that is not a displayed body; ``index`` is its number in the URL."""

    index: int
    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    disposition: str


class EmailSummary(BaseModel):
    """An email as a thread shows it (no bodies)."""

    model_config = ConfigDict(populate_by_name=True)

    email_id: int
    thread_id: int
    message_id: str | None
    subject: str
    from_: list[Address] = Field(alias="from")
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    reply_to: list[Address]
    date: datetime | None = Field(description="The Date header (UTC), if it had a valid one.")
    received_at: datetime
    size: int
    snippet: str
    labels: list[str]
    is_read: bool
    is_starred: bool
    is_draft: bool
    encryption: str = Field(description="none, signed or encrypted.")
    has_attachments: bool
    attachments: list[Attachment]
    version: int = Field(
        default=1,
        description="Grows by one with each edit of a draft; send it back as if_version (REST: the "
        "ETag, as If-Match) so an edit made meanwhile elsewhere is not overwritten.",
    )


class Header(BaseModel):
    name: str
    value: str


class EmailDetail(EmailSummary):
    """An email with its headers and bodies, read from the raw message."""

    in_reply_to: list[str]
    references: list[str]
    keywords: list[str] = Field(
        default_factory=list,
        description="Its keywords besides read, starred and draft (domain/keywords.py), lower case as "
        "JMAP shows them: $answered (IMAP \\Answered), $deleted (\\Deleted), $forwarded, $junk, a "
        "client's own...",
    )
    headers: list[Header]
    text_body: str | None
    html_body: str | None


def _addresses(values: list[dict[str, Any]] | None) -> list[Address]:
    return [Address(name=str(a.get("name") or ""), email=str(a.get("email") or "")) for a in values or []]


def email_summary(row: StoredEmail) -> EmailSummary:
    return EmailSummary(
        email_id=row.id,
        thread_id=row.thread_id,
        message_id=row.message_id,
        subject=row.subject,
        from_=_addresses(row.from_addrs),
        to=_addresses(row.to_addrs),
        cc=_addresses(row.cc_addrs),
        bcc=_addresses(row.bcc_addrs),
        reply_to=_addresses(row.reply_to_addrs),
        date=row.date,
        received_at=row.received_at,
        size=row.size,
        snippet=row.snippet,
        labels=list(row.labels),
        is_read=bool(row.is_read),
        is_starred=bool(row.is_starred),
        is_draft=bool(row.is_draft),
        encryption=row.encryption,
        has_attachments=bool(row.has_attachments),
        attachments=[Attachment.model_validate(a) for a in row.attachments or []],
        version=row.version or 1,
    )


def etag(version: int) -> str:
    """The REST ``ETag`` of an email at ``version`` (the RPC protocols have ``version``)."""
    return f'"{version}"'


def _decode(value: str) -> str:
    try:
        text = str(make_header(decode_header(value)))
    except Exception:  # a header the decoder cannot read is shown as it came
        text = value
    text = text.encode("utf-8", "replace").decode("utf-8")
    return re.sub(r"[\x00\r\n]+\s*", " ", text).strip()


def headers_of(raw: bytes) -> list[Header]:
    """The message's header fields in order, RFC 2047 words decoded, unfolded."""
    message = BytesHeaderParser(policy=compat32).parsebytes(raw)
    return [Header(name=str(k), value=_decode(str(v))) for k, v in message.items()[:MAX_HEADERS]]


async def load(ctx: Context, email_id: int) -> tuple[StoredEmail, bytes]:
    """One of the caller's emails (404 otherwise) and its stored message."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.read() as tx:
        row = await email_store.get(tx, user_id, email_id)
    if row is None:
        raise NotFound.of("email", email_id)
    return row, await _raw(ctx.rt, row)


async def _raw(rt: Runtime, row: StoredEmail) -> bytes:
    """The message as stored for this mailbox: its trace headers (``Return-Path``,
    ``Delivered-To``, ``Received``: delivery/trace.py) and the blob."""
    try:
        blob = await rt.blobs.get(row.blob_sha)
    except BlobNotFound:  # the row outlived its blob: nothing a client can do about it
        raise NotFound.of("email", row.id) from None
    trace = row.trace
    return trace.encode("utf-8") + blob if trace else blob


@api.method("mail.emails.get", http=GET("/emails/{id}"), access=UserSelf())
async def get_email(ctx: Context, id: Id) -> EmailDetail:
    """One of the caller's emails: headers, addresses, text and HTML bodies, attachment list."""
    row, raw = await load(ctx, id)
    return await email_detail(ctx, row, raw)


async def email_detail(ctx: Context, row: StoredEmail, raw: bytes) -> EmailDetail:
    """An email as ``mail.emails.get`` answers it (and its ``ETag``)."""
    parsed = (
        parse_message(raw) if len(raw) <= _PARSE_INLINE_BYTES else await asyncio.to_thread(parse_message, raw)
    )
    ctx.call.response_headers["ETag"] = etag(row.version or 1)
    async with ctx.rt.db.read() as tx:
        keywords = (await imap_store.keywords_of(tx, [row.id])).get(row.id, [])
    return EmailDetail(
        **email_summary(row).model_dump(),
        in_reply_to=list(row.in_reply_to or []),
        references=list(row.references or []),
        keywords=keywords,
        headers=headers_of(raw),
        text_body=parsed.text_body,
        html_body=parsed.html_body,
    )


@api.method("mail.emails.raw", http=GET("/emails/{id}/raw"), access=UserSelf())
async def raw_email(ctx: Context, id: Id) -> Annotated[Download, "message/rfc822"]:
    """The email exactly as it was received (``message/rfc822``)."""
    _, raw = await load(ctx, id)
    ctx.call.response_headers.update(_UNTRUSTED)
    return Download(raw, content_type="message/rfc822", filename=f"email-{id}.eml")


def _filename(name: str | None, index: int) -> str:
    cleaned = _UNSAFE_NAME.sub("_", name or "").strip(" .")
    return cleaned[:200] or f"attachment-{index}"


@api.method("mail.emails.attachment", http=GET("/emails/{id}/attachments/{n}"), access=UserSelf())
async def get_attachment(ctx: Context, id: Id, n: Index) -> Download:
    """Attachment ``n`` (its ``index``) of one of the caller's emails, decoded, always as a
    download (``Content-Disposition: attachment``) with its declared type and a safe name."""
    row, raw = await load(ctx, id)
    infos = row.attachments or []
    info = next((a for a in infos if a.get("index") == n), None)
    if info is None:
        raise NotFound.of("attachment", f"{id}/{n}")
    content = extract_attachment(raw, str(info["part_path"]))
    if content is None:
        raise NotFound.of("attachment", f"{id}/{n}")
    media_type = str(info.get("content_type") or "").lower()
    if not _MEDIA_TYPE.match(media_type):
        media_type = "application/octet-stream"
    ctx.call.response_headers.update(_UNTRUSTED)
    return Download(content, content_type=media_type, filename=_filename(info.get("filename"), n))
