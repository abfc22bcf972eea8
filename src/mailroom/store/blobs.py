"""The blob store: raw messages by SHA-256, written once, durable before anyone is told "stored".

Files live at ``<root>/ab/cd/<hex>``. A blob is written to a temporary file in its final
folder and renamed into place; then the file, its folder and any folder just created are
fsync'd together, and only then does ``put`` return. Writing the same content again finds
the file (checking its digest) and only makes sure it is durable: one copy however many
mailboxes hold the message.

Blocking file I/O runs in a worker thread (``asyncio.to_thread``) so the event loop keeps
serving. The ``blobs`` table records each blob; :func:`collect_garbage` (run by every
worker's housekeeping, services/housekeeping.py) deletes the ones no email, outbound intent,
queued message or upload names any more, once unregistered for a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import ColumnElement, and_, bindparam, delete, exists, func, select

from mailroom.store._prepared import PerDialect, chunks, run
from mailroom.store.engine import Query, Tx
from mailroom.store.mail_schema import blobs, emails, outbound_intents
from mailroom.store.outbound_schema import outbound_queue
from mailroom.store.uploads_schema import uploads
from mailroom.store.upsert import dialect_insert

_SHA = re.compile(r"^[0-9a-f]{64}$")
_TEMP_PREFIX = ".tmp-"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_path(path: Path, is_dir: bool) -> None:
    if is_dir:
        _fsync_dir(path)
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Threads for concurrent fsyncs (file + folders of one blob, several blobs at once).
_FSYNC_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="mailroom-fsync")


class BlobNotFound(LookupError):
    """No blob with that digest."""


class FileBlobStore:
    """Content-addressed blobs on a local (or shared) filesystem."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- naming --------------------------------------------------------------------------
    def path(self, sha: str) -> Path:
        """Where the blob ``sha`` lives (whether or not it exists)."""
        if not _SHA.match(sha):
            raise ValueError(f"not a SHA-256 hex digest: {sha!r}")
        return self.root / sha[:2] / sha[2:4] / sha

    # -- writing -------------------------------------------------------------------------
    async def put(self, data: bytes, sha: str | None = None) -> str:
        """Store ``data`` durably and return its SHA-256 (hex). Idempotent.

        ``sha``: the digest when the caller has it already (it is trusted, not checked).
        """
        return await asyncio.to_thread(self.put_sync, data, sha)

    def put_sync(self, data: bytes, sha: str | None = None) -> str:
        """Write, rename into place, then make file, folder and new folders durable together.

        The fsyncs run concurrently: the filesystem folds them into one journal commit
        (measured on ext4: ~3 ms for the three instead of ~12 ms one after another). The
        rename comes first, so after a crash in between a blob may exist incomplete under
        its name; it is never referenced (the database commits after ``put`` returns) and
        the next ``put`` of that content finds the digest wrong and writes it again.
        """
        sha = sha or sha256_hex(data)
        final = self.path(sha)
        if final.exists() and self._intact(final, sha):
            # Maybe written by another process whose fsyncs are still running: make sure.
            self._sync(final, final.parent, final.parent.parent)
            return sha
        new_dirs = self._make_dirs(final.parent)
        tmp = final.parent / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.close(fd)
        os.replace(tmp, final)
        self._sync(final, final.parent, *(d.parent for d in new_dirs))
        return sha

    @staticmethod
    def _intact(path: Path, sha: str) -> bool:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest() == sha

    @staticmethod
    def _sync(file: Path, *folders: Path) -> None:
        """fsync a file and folders at once; returns when all are durable.

        The folders go to the pool and the file is fsync'd by the calling thread meanwhile:
        one thread hand-off fewer per blob than sending all three.
        """
        pending = [_FSYNC_POOL.submit(_fsync_dir, f) for f in dict.fromkeys(folders)]
        try:
            _fsync_path(file, False)
        finally:
            for future in pending:
                future.result()

    async def ensure(self, sha: str, data: bytes) -> None:
        """Write ``data`` again if its file is missing (a collector removed it meanwhile)."""
        if not self.path(sha).exists():  # a stat: cheaper than a hop to a thread
            await asyncio.to_thread(self.put_sync, data, sha)

    def _make_dirs(self, folder: Path) -> list[Path]:
        """Create missing folders; returns the new ones (their parents need an fsync)."""
        missing: list[Path] = []
        current = folder
        while not current.exists():
            missing.append(current)
            current = current.parent
        for new in reversed(missing):
            with contextlib.suppress(FileExistsError):
                new.mkdir()
        return missing

    # -- reading -------------------------------------------------------------------------
    async def get(self, sha: str) -> bytes:
        """The blob's bytes; :class:`BlobNotFound` when there is none."""
        return await asyncio.to_thread(self.get_sync, sha)

    def get_sync(self, sha: str) -> bytes:
        try:
            return self.path(sha).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(sha) from None

    def open(self, sha: str) -> BinaryIO:
        """A binary file object (blocking; use from a worker thread for large blobs)."""
        try:
            return self.path(sha).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(sha) from None

    async def exists(self, sha: str) -> bool:
        return await asyncio.to_thread(self.path(sha).exists)

    # -- removing ------------------------------------------------------------------------
    async def delete(self, sha: str) -> None:
        """Remove a blob's file. Only :func:`collect_garbage` calls this (unreferenced blobs)."""
        await asyncio.to_thread(self._delete_sync, sha)

    def _delete_sync(self, sha: str) -> None:
        path = self.path(sha)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            _fsync_dir(path.parent)

    def sweep_temporary(self, older_than_seconds: float = 3600.0) -> int:
        """Remove temporary files a crash left behind; returns how many."""
        if not self.root.exists():
            return 0
        cutoff = time.time() - older_than_seconds
        removed = 0
        for tmp in self.root.glob(f"*/*/{_TEMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
        return removed


# -- the blobs table ---------------------------------------------------------------------


_RECORD = PerDialect(
    lambda dialect: (
        dialect_insert(dialect, blobs)
        .values(
            sha=bindparam("sha"), size=bindparam("size"), created_at=bindparam("now"), mime=bindparam("mime")
        )
        .on_conflict_do_update(
            index_elements=["sha"],
            set_={
                "size": bindparam("size"),
                "created_at": bindparam("now"),
                "mime": func.coalesce(bindparam("mime"), blobs.c.mime),
            },
        )
    )
)


async def record(tx: Tx, sha: str, size: int, now: datetime, mime: str | None = None) -> None:
    """Register a blob, or touch its row when it is known (``created_at`` becomes ``now``:
    it is the time the blob was last registered, what the collector's grace period counts from).

    Touching (rather than ignoring) locks the row on PostgreSQL until commit, so a garbage
    collector cannot delete it under an ingest that is about to refer to it.

    ``mime``: the message's structure (store/mime.py), when the blob is a message.
    """
    await run(tx, _RECORD(tx), {"sha": sha, "size": size, "now": now, "mime": mime})


def _unreferenced(sha: ColumnElement[str]) -> ColumnElement[bool]:
    """No email, queued message, outbound intent or upload holds the blob ``sha``.

    The one list of what refers to a blob: a table that starts holding blobs is added here.
    """
    return and_(
        ~exists().where(emails.c.blob_sha == sha),
        ~exists().where(outbound_intents.c.blob_sha == sha),
        ~exists().where(outbound_queue.c.blob_sha == sha),
        ~exists().where(uploads.c.blob_sha == sha),
    )


_UNREFERENCED = Query(
    select(blobs.c.sha)
    .where(blobs.c.created_at < bindparam("before"), _unreferenced(blobs.c.sha))
    .order_by(blobs.c.created_at)
    .limit(bindparam("limit"))
)
_RELEASE = (
    delete(blobs)
    .where(blobs.c.sha.in_(bindparam("shas", expanding=True)), _unreferenced(blobs.c.sha))
    .returning(blobs.c.sha)
)
_COLLECT_IF_UNREFERENCED = delete(blobs).where(
    blobs.c.sha == bindparam("sha"),
    blobs.c.created_at < bindparam("before"),
    _unreferenced(bindparam("sha")),
)


async def release(tx: Tx, store: FileBlobStore, shas: Collection[str]) -> list[str]:
    """Delete the rows and files of those of ``shas`` that nothing refers to any more."""
    released: list[str] = []
    for chunk in chunks(sorted(set(shas))):
        # One statement per chunk: it deletes, and names, only the rows it found unreferenced.
        for sha in sorted(await tx.scalars(_RELEASE, {"shas": chunk})):
            await store.delete(sha)
            released.append(sha)
    return released


async def collect_garbage(tx: Tx, store: FileBlobStore, *, before: datetime, limit: int = 1000) -> list[str]:
    """Delete up to ``limit`` blobs nothing refers to and nobody registered since ``before``
    (rows and files); returns the digests this call deleted (another collector's are not).

    Runs inside a write transaction, and unlinks files *before* it commits. Why a writer
    that is about to use a blob never loses it:

    - Writers (ingest, the queue, uploads) store the file first and then, in one write
      transaction, register the blob (:func:`record`), call :meth:`FileBlobStore.ensure`
      (which rewrites a file removed meanwhile) and insert the rows that refer to it. Until
      that commits the collector cannot see those rows, but it only ever looks at
      ``blobs`` rows, never at files: a new blob has no row yet, so it is safe.
    - A blob that exists unreferenced and is being used again: on SQLite the write lock
      orders the collector and the writer, so either the collector deleted it first (the
      writer re-registers it and ``ensure`` rewrites the file) or it sees the reference.
      On PostgreSQL the writer's ``record`` updates the row and so locks it; the collector's
      delete waits for the writer's commit and then re-checks its conditions on the new
      row, but its ``NOT EXISTS`` sub-queries still see the snapshot taken before that
      commit, so the delete would go ahead (only the foreign key stops it, failing the whole
      pass). The grace period closes that gap: ``record`` sets ``created_at`` to now, so
      the re-checked row is younger than ``before`` and is kept.
    - Several collectors at once delete each row once; a collector whose delete found
      nothing does not unlink or count it.
    """
    shas: list[str] = await tx.scalars(_UNREFERENCED, {"limit": limit, "before": before})
    released: list[str] = []
    for sha in shas:
        if await tx.rowcount(_COLLECT_IF_UNREFERENCED, {"sha": sha, "before": before}):
            await store.delete(sha)
            released.append(sha)
    return released
