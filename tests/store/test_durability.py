"""Commit durability (setting ``durable_commits``): which writes wait for the disk, and that the
others reach it within ``commit_flush_ms``.

The fsyncs SQLite makes itself are not visible from Python; the ones mailroom adds (a durable
write's, the flush task's) go through ``os.fdatasync`` and are counted here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import event, text

from mailroom.store import sqlite as engine
from mailroom.store.engine import AsyncDatabase, SQLiteDatabase

from ..conftest import PG_URL

pytestmark = pytest.mark.anyio


class Syncs:
    """Records the files mailroom fdatasyncs (and still syncs them)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.fail_next = False

    def count(self) -> int:
        return len(self.paths)


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Syncs:
    record = Syncs()
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        if record.fail_next:
            record.fail_next = False
            raise OSError(5, "Input/output error")
        record.paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(engine.os, "fdatasync", fdatasync)
    return record


class FlushTask:
    """Counts the flush task's runs (each one done: fsync if needed, checkpoint if due)."""

    def __init__(self) -> None:
        self.runs = 0


@pytest.fixture
def flush_task(monkeypatch: pytest.MonkeyPatch) -> FlushTask:
    record = FlushTask()
    run = engine._Flusher.__call__

    def counted(self: engine._Flusher, sync: bool) -> None:
        try:
            run(self, sync)
        finally:
            record.runs += 1

    monkeypatch.setattr(engine._Flusher, "__call__", counted)
    return record


async def _open(tmp_path: Path, mode: str, flush_ms: int = 20) -> SQLiteDatabase:
    db = SQLiteDatabase(f"sqlite:///{tmp_path / 'd.db'}", durable_commits=mode, commit_flush_ms=flush_ms)
    async with db.write() as tx:
        await tx.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
    await db.flush()
    return db


@pytest.fixture
async def deferred(tmp_path: Path) -> AsyncIterator[SQLiteDatabase]:
    db = await _open(tmp_path, "mail")
    yield db
    await db.close()


async def _insert(db: SQLiteDatabase, x: int, *, durable: bool = False) -> None:
    async with db.write(durable=durable) as tx:
        await tx.execute(text("INSERT INTO t (x) VALUES (:x)"), {"x": x})


async def _eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition`` holds. The 30 s are a hang guard, not a timing bound: the flush
    runs in a worker thread and fsyncs, and a loaded machine can delay either by seconds (a
    fixed ``sleep`` before asserting made these tests fail under load). What is tested is
    that the flush happens, and how many there are, not how fast the disk is."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within 30 s"
        await asyncio.sleep(0.01)


async def _synchronous_pragma(db: SQLiteDatabase) -> int:
    async with db.write() as tx:
        return int(await tx.scalar(text("PRAGMA synchronous")))


async def test_every_commit_waits_for_the_disk_by_default_for_tools(tmp_path: Path, syncs: Syncs) -> None:
    db = await _open(tmp_path, "all")
    try:
        assert await _synchronous_pragma(db) == 2  # FULL: SQLite fsyncs each commit itself
        await _insert(db, 1)
        await asyncio.sleep(0.1)
        assert syncs.count() == 0  # nothing deferred, nothing to flush
    finally:
        await db.close()


async def test_a_durable_write_is_on_disk_when_it_returns(
    deferred: SQLiteDatabase, syncs: Syncs, flush_task: FlushTask
) -> None:
    assert await _synchronous_pragma(deferred) == 1  # NORMAL: the commit itself does not fsync
    # That read went through a (deferred) write: its flush is due within commit_flush_ms, and
    # on a loaded machine could come while the durable write below is in its thread.
    await deferred.flush()
    before = syncs.count()
    await _insert(deferred, 1, durable=True)
    assert syncs.count() == before + 1
    assert syncs.paths[-1].endswith("d.db-wal")
    # The flush task still runs (to checkpoint) but has nothing left to fsync: neither the
    # flush above nor the durable write left the database marked dirty.
    runs = flush_task.runs
    await _eventually(lambda: flush_task.runs > runs, "the flush task")
    assert syncs.count() == before + 1


async def test_a_durable_write_covers_the_deferred_commits_before_it(tmp_path: Path, syncs: Syncs) -> None:
    # A delay no test waits for: the flush task never runs here, whatever the load.
    db = await _open(tmp_path, "mail", flush_ms=600_000)
    try:
        before = syncs.count()
        await _insert(db, 1)
        assert db._dirty  # waits for the flush task
        await _insert(db, 2, durable=True)
        assert syncs.count() == before + 1
        assert not db._dirty  # the durable write's fsync of the WAL covered the first commit
    finally:
        await db.close()


async def test_other_writes_are_flushed_within_the_delay_one_flush_for_many(
    deferred: SQLiteDatabase, syncs: Syncs
) -> None:
    await asyncio.sleep(0.1)
    before = syncs.count()
    for i in range(5):
        await _insert(deferred, i)
    # The five commits ran on the loop without yielding to it, so within one commit_flush_ms.
    assert syncs.count() == before  # returned before the disk
    await _eventually(lambda: syncs.count() > before, "the deferred commits' flush")
    await asyncio.sleep(0.1)  # five times commit_flush_ms: a second flush would have come by now
    assert syncs.count() == before + 1
    assert syncs.paths[-1].endswith("d.db-wal")
    async with deferred.read() as tx:
        assert await tx.scalar(text("SELECT count(*) FROM t")) == 5


async def test_a_unit_of_work_joined_by_a_durable_write_commits_durably(
    deferred: SQLiteDatabase, syncs: Syncs
) -> None:
    await asyncio.sleep(0.1)
    before = syncs.count()
    async with deferred.unit_of_work():
        await _insert(deferred, 1)
        await _insert(deferred, 2, durable=True)
        assert syncs.count() == before  # not committed yet
    assert syncs.count() == before + 1


async def test_close_flushes_what_is_pending(tmp_path: Path, syncs: Syncs) -> None:
    db = await _open(tmp_path, "mail", flush_ms=1000)
    before = syncs.count()
    await _insert(db, 1)
    await db.close()
    assert syncs.count() == before + 1


async def test_a_failed_flush_is_logged_and_tried_again(
    deferred: SQLiteDatabase, syncs: Syncs, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.sleep(0.1)
    before = syncs.count()
    syncs.fail_next = True
    with caplog.at_level(logging.ERROR, logger="mailroom.store.sqlite"):
        await _insert(deferred, 1)
        await _eventually(lambda: syncs.count() > before, "the retried flush")
    assert "flushing the database's WAL to disk failed" in caplog.text
    assert syncs.count() == before + 1  # the retry succeeded


async def test_an_in_memory_database_never_flushes(syncs: Syncs) -> None:
    db = SQLiteDatabase("sqlite://", durable_commits="mail")
    try:
        async with db.write(durable=True) as tx:
            assert await tx.scalar(text("SELECT 1")) == 1
        await asyncio.sleep(0.1)
        assert syncs.count() == 0
    finally:
        await db.close()


@pytest.mark.skipif(PG_URL is None, reason="needs MAILROOM_TEST_DATABASE_URL (PostgreSQL)")
@pytest.mark.parametrize("mode", ["mail", "all"])
async def test_postgresql_commits_asynchronously_except_durable_writes(pg_database: str, mode: str) -> None:
    # "all" leaves the server's own setting alone (the throw-away test server runs with it off).
    probe = AsyncDatabase(pg_database)
    try:
        async with probe.read() as tx:
            server_default = await tx.scalar(text("SHOW synchronous_commit"))
    finally:
        await probe.close()
    plain = "off" if mode == "mail" else server_default
    db = AsyncDatabase(pg_database, durable_commits=mode)
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.write() as tx:
            assert await tx.scalar(text("SHOW synchronous_commit")) == plain
        plain_statements = list(statements)
        async with db.write(durable=True) as tx:
            assert await tx.scalar(text("SHOW synchronous_commit")) == plain
    finally:
        await db.close()
    durable_statements = statements[len(plain_statements) :]
    assert not any("synchronous_commit TO on" in s for s in plain_statements)
    turned_on = [s for s in durable_statements if "synchronous_commit TO on" in s]
    assert turned_on == (["SET LOCAL synchronous_commit TO on"] if mode == "mail" else [])


@pytest.mark.parametrize(("every", "bounded"), [(0.0, True), (3600.0, False)])
async def test_the_flush_task_checkpoints_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flush_task: FlushTask, every: float, bounded: bool
) -> None:
    # Deferred commits run on the loop without automatic checkpoints; the flush task
    # checkpoints instead, so the WAL is reused rather than growing without end.
    monkeypatch.setattr(engine, "CHECKPOINT_EVERY_SECONDS", every)
    db = await _open(tmp_path, "mail", flush_ms=1)
    try:
        async with db.write() as tx:
            await tx.execute(text("CREATE TABLE big (x TEXT)"))
        for i in range(1500):
            async with db.write() as tx:
                await tx.execute(text("INSERT INTO big (x) VALUES (:x)"), {"x": "x" * 3000})
            if i % 25 == 0:
                # The flush task's turn: wait until it has run (a fixed sleep was not always
                # enough on a loaded machine, and the WAL then grew with nothing checkpointed).
                done = flush_task.runs
                await _eventually(lambda: flush_task.runs > done, "the flush task")  # noqa: B023
        wal = (tmp_path / "d.db-wal").stat().st_size
    finally:
        await db.close()
    # Unchecked, 1,500 pages of 4 KiB and more; checkpointed, the WAL is reused from its start.
    if bounded:
        assert wal < 3_000_000
    else:
        assert wal > 5_500_000
