"""Blobs (RFC 8620 §6): upload, download and ``Blob/copy`` over the content-addressed blob
store and the attachment uploads (``mail.uploads``: its size limit, encryption policy and
expiry of unused uploads apply).

A blobId is ``G`` + the SHA-256 of the content: the same bytes are the same blob. A caller
may read a blob that one of their emails or uploads is made of, and no other.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, Field

from mailroom.errors import NotFound
from mailroom.registry import Context, Download, Upload, UserSelf
from mailroom.services.jmap._accounts import account_id, account_of
from mailroom.services.jmap._api import CORE, api, method
from mailroom.services.jmap._errors import MethodError
from mailroom.services.jmap._set import set_error
from mailroom.services.jmap._types import IdOrRef, JmapId
from mailroom.services.jmap.email import blobs as email_blobs
from mailroom.services.mail.uploads import create_upload
from mailroom.store import jmap as jmap_store

BLOB_PREFIX = "G"
_BLOB_ID = re.compile(r"^G([0-9a-f]{64})$")


def blob_id(sha: str) -> str:
    return BLOB_PREFIX + sha


def blob_sha(value: str) -> str | None:
    """The SHA-256 a ``G…`` blobId names; None for anything else."""
    m = _BLOB_ID.match(value)
    return m.group(1) if m else None


async def readable_sha(ctx: Context, user_id: int, value: str) -> str | None:
    """The blob ``value`` names, if the user may read it (an email or upload of theirs)."""
    sha = blob_sha(value)
    if sha is None:
        return None
    async with ctx.rt.db.read() as tx:
        return sha if await jmap_store.holds_blob(tx, user_id, sha) else None


class UploadResponse(BaseModel):
    """RFC 8620 §6.1: what an upload answers."""

    accountId: str
    blobId: str
    type: str
    size: int


@api.method("jmap.blob.upload", access=UserSelf(), mutating=True)
async def upload_blob(ctx: Context, accountId: JmapId, file: Upload) -> UploadResponse:
    """Store a blob for the account (as an attachment upload: same limit, policy, expiry)."""
    account_of(ctx, accountId)
    info = await create_upload(ctx, file)
    async with ctx.rt.db.read() as tx:
        sha = await jmap_store.upload_sha(tx, info.attachment_id)
    return UploadResponse(accountId=accountId, blobId=blob_id(sha), type=info.content_type, size=info.size)


@api.method("jmap.blob.download", access=UserSelf())
async def download_blob(
    ctx: Context,
    accountId: JmapId,
    blobId: JmapId,
    name: Annotated[str, Field(max_length=255)],
    type: Annotated[str, Field(max_length=255)] | None = None,
) -> Download:
    """The blob's bytes, named ``name``, as media type ``type`` (else the upload's, else
    ``application/octet-stream``); ``not_found`` for a blob the caller may not read."""
    user_id = account_of(ctx, accountId)
    sha = await readable_sha(ctx, user_id, blobId)
    if sha is None:
        # A part of an email (G<sha>-1-2: services/jmap/email/blobs.py), decoded.
        part = await email_blobs.part_of(ctx, user_id, blobId)
        if part is None:
            raise NotFound.of("blob", blobId)
        return Download(content=part[0], content_type=type or part[1].media_type, filename=name)
    async with ctx.rt.db.read() as tx:
        uploaded = await jmap_store.upload_of_blob(tx, user_id, sha)
    content = await ctx.rt.blobs.get(sha)
    media = type or (uploaded[0] if uploaded else "application/octet-stream")
    return Download(content=content, content_type=media, filename=name)


class CopyResponse(BaseModel):
    fromAccountId: str
    accountId: str
    copied: dict[str, str] | None
    notCopied: dict[str, dict[str, Any]] | None


@method("Blob/copy", capability=CORE)
async def blob_copy(
    ctx: Context,
    fromAccountId: JmapId,
    accountId: JmapId,
    blobIds: Annotated[list[IdOrRef], Field(max_length=10_000)],
) -> CopyResponse:
    """Copy blobs between accounts. A caller has one account, so a copy is to itself: the
    blobs it may read are copied as they are (same id)."""
    user_id = account_of(ctx, accountId)
    if fromAccountId != account_id(user_id):
        raise MethodError("fromAccountNotFound", f"no account {fromAccountId}")
    copied: dict[str, str] = {}
    not_copied: dict[str, dict[str, Any]] = {}
    for value in blobIds:
        if await readable_sha(ctx, user_id, value) is None:
            not_copied[value] = set_error("notFound", f"no blob {value}")
        else:
            copied[value] = value
    return CopyResponse(
        fromAccountId=fromAccountId, accountId=accountId, copied=copied or None, notCopied=not_copied or None
    )
