"""mail.uploads.*: attachments uploaded before the email that carries them is composed.

``POST /uploads`` takes one file (multipart, or the raw body with its Content-Type and a
file name; JSON-RPC: ``{"file": {"content_base64", "filename", "content_type"}}``) and
answers ``{attachment_id, size, expires_at}``. An upload no sent email or draft uses expires
``upload_ttl_hours`` after it was made; :func:`expire_uploads` (run by every worker, see
:class:`UploadExpiry`) deletes it and its blob when nothing else holds that content.

A domain may require OpenPGP-encrypted attachments (``admin.domains.set_attachment_policy``):
its users' uploads that are not an encrypted OpenPGP message are refused with 422
``encryption_required``. Every upload belongs to its uploader: another user's id is
``not_found``, whatever they do with it.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field

from mailroom.background import Periodic
from mailroom.domain.openpgp import is_openpgp_encrypted
from mailroom.errors import BadRequest, MailroomError, NotFound, PayloadTooLarge
from mailroom.registry import DELETE, GET, POST, Context, Upload, UserSelf
from mailroom.runtime import Runtime
from mailroom.services.mail._api import api
from mailroom.services.mail._mailbox import user_id_of
from mailroom.store import blobs as blob_rows
from mailroom.store import uploads as store
from mailroom.store.uploads import UploadRecord

log = logging.getLogger("mailroom.uploads")

UploadId = Annotated[str, Field(pattern=r"^up_[A-Za-z0-9_-]{16,37}$", description="An attachment id.")]
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
#: Files larger than this are checked for OpenPGP framing in a worker thread.
_CHECK_INLINE_BYTES = 1024 * 1024


class EncryptionRequired(MailroomError):
    """The caller's domain accepts only OpenPGP-encrypted attachments."""

    code: ClassVar[str] = "encryption_required"
    status: ClassVar[int] = 422
    title: ClassVar[str] = "Encrypted attachments required"


class UploadInfo(BaseModel):
    """An uploaded attachment: its id for ``attachment_ids`` when composing, and until when
    it is kept if nothing uses it (null once a sent email or draft does)."""

    attachment_id: str
    size: int
    expires_at: datetime | None
    filename: str | None
    content_type: str
    encrypted: bool = Field(description="The file is an OpenPGP encrypted message.")
    used_by_email: int | None = None


def _info(row: UploadRecord) -> UploadInfo:
    used = row.used_by_email
    return UploadInfo(
        attachment_id=row.id,
        size=row.size,
        expires_at=None if used is not None else row.expires_at,
        filename=row.filename,
        content_type=row.content_type,
        encrypted=bool(row.encrypted),
        used_by_email=used,
    )


def clean_filename(name: str | None) -> str | None:
    """The last path component, without control characters, at most 255 characters."""
    if not name:
        return None
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(c for c in name if c.isprintable()).strip().strip(".")
    return name[:255] or None


def clean_media_type(value: str, filename: str | None) -> str:
    media = value.split(";", 1)[0].strip().lower()
    if media in ("", "application/octet-stream") and filename:
        media = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return media if _MEDIA_TYPE.match(media) else "application/octet-stream"


async def _encrypted(content: bytes) -> bool:
    if len(content) <= _CHECK_INLINE_BYTES:
        return is_openpgp_encrypted(content)
    return await asyncio.to_thread(is_openpgp_encrypted, content)


@api.method("mail.uploads.create", http=POST("/uploads", status=201), access=UserSelf(), mutating=True)
async def create_upload(ctx: Context, file: Upload) -> UploadInfo:
    """Upload one attachment (``multipart/form-data`` with one file part, or the raw body
    with its ``Content-Type`` and a name in ``Content-Disposition`` or ``?filename=``).

    Larger than ``upload_max_bytes`` (25 MB by default): 413. When the caller's domain
    requires encrypted attachments, a file that is not an OpenPGP encrypted message: 422
    ``encryption_required``. Unused uploads are deleted after ``upload_ttl_hours``.
    """
    user_id = user_id_of(ctx)
    rt = ctx.rt
    content = file.content
    limit = rt.settings.upload_max_bytes
    if len(content) > limit:
        raise PayloadTooLarge(f"the file is larger than {limit} bytes", limit=limit)
    if not content:
        raise BadRequest("the file is empty")
    filename = clean_filename(file.filename)
    media = clean_media_type(file.content_type, filename)
    encrypted = await _encrypted(content)
    domain = (ctx.principal.email or "").rpartition("@")[2].lower()
    async with rt.db.read() as tx:
        required = await store.requires_encryption(tx, domain)
    if required and not encrypted:
        raise EncryptionRequired(
            f"the domain {domain} accepts only OpenPGP-encrypted attachments: encrypt the file "
            "(an OpenPGP message, armoured or binary) and upload it again",
            domain=domain,
        )
    sha = await rt.blobs.put(content)
    now = rt.clock.now()
    upload_id = "up_" + secrets.token_urlsafe(24)
    values: store.NewUpload = {
        "id": upload_id,
        "user_id": user_id,
        "blob_sha": sha,
        "size": len(content),
        "content_type": media,
        "filename": filename,
        "encrypted": encrypted,
        "created_at": now,
        "expires_at": now + timedelta(hours=rt.settings.upload_ttl_hours),
        "used_by_email": None,
    }
    async with rt.db.write() as tx:
        await blob_rows.record(tx, sha, len(content), now)
        await rt.blobs.ensure(sha, content)  # a collector may have removed the file meanwhile
        await store.create(tx, values)
        row = await store.get(tx, user_id, upload_id)
    assert row is not None
    return _info(row)


@api.method("mail.uploads.get", http=GET("/uploads/{id}"), access=UserSelf())
async def get_upload(ctx: Context, id: UploadId) -> UploadInfo:
    """One of the caller's uploads."""
    async with ctx.rt.db.read() as tx:
        row = await store.get(tx, user_id_of(ctx), id)
    if row is None:
        raise NotFound.of("attachment", id)
    return _info(row)


@api.method("mail.uploads.delete", http=DELETE("/uploads/{id}"), access=UserSelf())
async def delete_upload(ctx: Context, id: UploadId) -> None:
    """Delete one of the caller's uploads (an email already sent with it keeps its copy)."""
    rt = ctx.rt
    async with rt.db.write() as tx:
        sha = await store.delete_one(tx, user_id_of(ctx), id)
        if sha is None:
            raise NotFound.of("attachment", id)
        await store.release_blobs(tx, rt.blobs, [sha])


# -- what compose uses ---------------------------------------------------------------------


async def uploaded_attachments(rt: Runtime, user_id: int, ids: Sequence[str]) -> list[tuple[bytes, str, str]]:
    """``(content, media type, file name)`` of ``user_id``'s uploads ``ids``, in order;
    ``not_found`` for an id that is not theirs (or expired)."""
    async with rt.db.read() as tx:
        rows = {r.id: r for r in await store.owned(tx, user_id, ids)}
    out: list[tuple[bytes, str, str]] = []
    for n, upload_id in enumerate(ids):
        row = rows.get(upload_id)
        if row is None:
            raise NotFound.of("attachment", upload_id)
        content = await rt.blobs.get(row.blob_sha)
        out.append((content, row.content_type, row.filename or f"attachment-{n + 1}"))
    return out


async def mark_used(rt: Runtime, user_id: int, ids: Sequence[str], email_id: int) -> None:
    """``email_id`` (a sent email or a draft) carries these uploads: they no longer expire."""
    async with rt.db.write() as tx:
        await store.mark_used(tx, user_id, ids, email_id)


# -- expiry --------------------------------------------------------------------------------


async def expire_uploads(rt: Runtime, *, limit: int = 500) -> int:
    """Delete unused uploads whose time is up, and their blobs when nothing else holds
    them; how many uploads went. Safe in several processes at once."""
    now = rt.clock.now()
    total = 0
    while True:
        async with rt.db.read() as tx:
            rows = await store.expired(tx, now, limit=limit)
        if not rows:
            return total
        async with rt.db.write() as tx:
            gone = await store.delete_ids(tx, [r.id for r in rows], now)
            await store.release_blobs(tx, rt.blobs, [r.blob_sha for r in rows])
        total += gone
        if len(rows) < limit:
            return total


class UploadExpiry(Periodic):
    """Runs :func:`expire_uploads` every ``upload_expiry_interval_seconds`` (each worker)."""

    name = "mailroom-upload-expiry"

    def __init__(self, rt: Runtime) -> None:
        super().__init__()
        self.rt = rt

    async def step(self) -> None:
        gone = await expire_uploads(self.rt)
        if gone:
            log.info("deleted %d expired upload(s)", gone)

    async def delay(self) -> float:
        return self.rt.settings.upload_expiry_interval_seconds
