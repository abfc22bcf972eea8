"""Attachment uploads and per-domain attachment policies. Every read is scoped to its owner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from sqlalchemy import delete, insert, select, update

from mailroom.store import blobs as blobs_store
from mailroom.store.blobs import FileBlobStore
from mailroom.store.engine import Tx
from mailroom.store.uploads_schema import attachment_policies, uploads
from mailroom.store.upsert import upsert


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """An uploaded attachment; it expires at ``expires_at`` unless an email uses it."""

    id: str
    user_id: int
    blob_sha: str
    size: int
    content_type: str
    filename: str | None
    encrypted: bool
    created_at: datetime
    expires_at: datetime
    used_by_email: int | None


@dataclass(frozen=True, slots=True)
class ExpiredUpload:
    """An unused upload whose time is up, and its blob."""

    id: str
    blob_sha: str


_COLUMNS = [uploads.c[name] for name in UploadRecord.__dataclass_fields__]


class NewUpload(TypedDict):
    """The columns :func:`create` writes."""

    id: str
    user_id: int
    blob_sha: str
    size: int
    content_type: str
    filename: str | None
    encrypted: bool
    created_at: datetime
    expires_at: datetime
    used_by_email: int | None


async def create(tx: Tx, values: NewUpload) -> None:
    await tx.execute(insert(uploads).values(**values))


async def get(tx: Tx, user_id: int, upload_id: str) -> UploadRecord | None:
    """``user_id``'s upload ``upload_id`` (None for a missing one or another user's)."""
    row = await tx.first(select(*_COLUMNS).where(uploads.c.id == upload_id, uploads.c.user_id == user_id))
    return UploadRecord(**row) if row is not None else None


async def owned(tx: Tx, user_id: int, upload_ids: Sequence[str]) -> list[UploadRecord]:
    """Those of ``upload_ids`` that are ``user_id``'s."""
    if not upload_ids:
        return []
    rows = await tx.all(
        select(*_COLUMNS).where(uploads.c.id.in_(list(upload_ids)), uploads.c.user_id == user_id)
    )
    return [UploadRecord(**row) for row in rows]


async def mark_used(tx: Tx, user_id: int, upload_ids: Sequence[str], email_id: int) -> int:
    """Record that ``email_id`` uses these uploads: they no longer expire."""
    if not upload_ids:
        return 0
    return await tx.rowcount(
        update(uploads)
        .where(uploads.c.id.in_(list(upload_ids)), uploads.c.user_id == user_id)
        .values(used_by_email=email_id)
    )


async def delete_one(tx: Tx, user_id: int, upload_id: str) -> str | None:
    """Delete an upload of ``user_id``; its blob digest (None: there was none)."""
    row = await get(tx, user_id, upload_id)
    if row is None:
        return None
    await tx.execute(delete(uploads).where(uploads.c.id == upload_id, uploads.c.user_id == user_id))
    return row.blob_sha


async def expired(tx: Tx, now: datetime, *, limit: int) -> list[ExpiredUpload]:
    """Unused uploads whose time is up, oldest first."""
    rows = await tx.all(
        select(uploads.c.id, uploads.c.blob_sha)
        .where(uploads.c.used_by_email.is_(None), uploads.c.expires_at <= now)
        .order_by(uploads.c.expires_at)
        .limit(limit)
    )
    return [ExpiredUpload(**row) for row in rows]


async def delete_ids(tx: Tx, upload_ids: Sequence[str], now: datetime) -> int:
    """Delete these uploads if they are still unused and expired (a send may have used one)."""
    if not upload_ids:
        return 0
    return await tx.rowcount(
        delete(uploads).where(
            uploads.c.id.in_(list(upload_ids)),
            uploads.c.used_by_email.is_(None),
            uploads.c.expires_at <= now,
        )
    )


async def release_blobs(tx: Tx, store: FileBlobStore, shas: Sequence[str]) -> list[str]:
    """Delete the blobs among ``shas`` nothing refers to any more (rows, then files)."""
    return await blobs_store.release(tx, store, shas)


# -- per-domain policy -------------------------------------------------------------------


async def requires_encryption(tx: Tx, domain: str) -> bool:
    value = await tx.scalar(
        select(attachment_policies.c.require_encrypted).where(attachment_policies.c.domain == domain)
    )
    return bool(value)


async def set_policy(tx: Tx, domain: str, *, require_encrypted: bool, now: datetime) -> None:
    values = {"require_encrypted": require_encrypted, "updated_at": now}
    await upsert(tx, attachment_policies, {"domain": domain, **values}, ["domain"], values)
