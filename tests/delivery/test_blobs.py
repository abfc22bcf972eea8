"""The blob store: content addressing, durability steps, garbage collection."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.mailhelpers import create_user, message

from mailroom.bootstrap import Mailroom
from mailroom.delivery.ingest import ingest
from mailroom.delivery.resolve import LocalTarget, Resolution
from mailroom.store import blobs as blob_store
from mailroom.store import emails as email_store
from mailroom.store.blobs import BlobNotFound, FileBlobStore, sha256_hex
from mailroom.store.mail_schema import blobs

pytestmark = pytest.mark.anyio


async def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    sha = await store.put(b"hello")
    assert sha == sha256_hex(b"hello")
    path = store.path(sha)
    assert path == tmp_path / "blobs" / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == b"hello"
    mtime = path.stat().st_mtime_ns
    assert await store.put(b"hello") == sha
    assert path.stat().st_mtime_ns == mtime  # not rewritten
    assert await store.get(sha) == b"hello"
    with store.open(sha) as fh:
        assert fh.read() == b"hello"
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


async def test_durability_steps_fsync_file_and_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    store = FileBlobStore(tmp_path / "blobs")
    sha = store.put_sync(b"data")
    final = store.path(sha)
    # The file under its final name, its folder, and the parent of every new folder.
    assert sorted(synced) == sorted(
        [str(final), str(final.parent), str(final.parent.parent), str(tmp_path / "blobs"), str(tmp_path)]
    )


async def test_an_incomplete_blob_left_by_a_crash_is_rewritten(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    sha = sha256_hex(b"the whole message")
    path = store.path(sha)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"the wh")  # renamed into place, then the machine died before fsync
    assert await store.put(b"the whole message") == sha
    assert path.read_bytes() == b"the whole message"


async def test_missing_and_bad_digests(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    with pytest.raises(BlobNotFound):
        await store.get("0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        store.path("../../etc/passwd")
    await store.ensure(sha256_hex(b"x"), b"x")
    assert await store.exists(sha256_hex(b"x"))


async def test_temporary_files_of_a_crash_are_swept(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    sha = store.put_sync(b"x")
    stale = store.path(sha).parent / ".tmp-deadbeef"
    stale.write_bytes(b"half")
    os.utime(stale, (0, 0))
    assert store.sweep_temporary() == 1
    assert not stale.exists()
    assert store.path(sha).exists()


async def test_garbage_collection_keeps_referenced_blobs(mailroom: Mailroom) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    target = Resolution("alice@example.org", "accepted", [LocalTarget(alice, "alice@example.org")])
    rt = mailroom.runtime
    kept = (await ingest(rt, message(message_id="<k@x>"), mail_from="", recipients=[target], source="lmtp"))[
        0
    ]
    gone = (await ingest(rt, message(message_id="<g@x>"), mail_from="", recipients=[target], source="lmtp"))[
        0
    ]
    async with rt.db.write() as tx:
        [row] = await email_store.delete_emails(tx, alice, list(gone.email_ids))
        # No grace here: nothing else writes (the housekeeping tests cover the grace period).
        collected = await blob_store.collect_garbage(
            tx, rt.blobs, before=rt.clock.now() + timedelta(seconds=1)
        )
    assert collected == [row.blob_sha]
    assert not rt.blobs.path(row.blob_sha).exists()
    async with rt.db.read() as tx:
        assert await tx.scalar(select(func.count()).select_from(blobs)) == 1
        kept_row = await email_store.get(tx, alice, kept.email_ids[0])
    assert kept_row is not None
    assert rt.blobs.path(kept_row.blob_sha).exists()
    # The message arrives again after its blob was collected: ingest writes it back.
    again = (await ingest(rt, message(message_id="<g@x>"), mail_from="", recipients=[target], source="lmtp"))[
        0
    ]
    assert again.code == 250
    assert rt.blobs.path(row.blob_sha).exists()
