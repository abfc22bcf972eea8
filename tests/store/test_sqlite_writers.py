"""Several processes writing to one SQLite file: the write lock is taken on the event loop when
it is free and waited for in a thread when another process holds it. Every write must land."""

from __future__ import annotations

import asyncio
import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailroom.store import domains, migrate
from mailroom.store.engine import SQLiteDatabase

WRITES = 150


def _writer(url: str, prefix: str) -> None:
    async def run() -> None:
        db = SQLiteDatabase(url)
        now = datetime.now(UTC)
        for i in range(WRITES):
            async with db.write() as tx:
                values = {"name": f"{prefix}{i}.example", "comment": "", "signup_enabled": False}
                await domains.insert_domain(tx, values | {"created_at": now, "updated_at": now})
        await db.close()

    asyncio.run(run())


@pytest.mark.slow
def test_concurrent_processes_all_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"

    async def prepare() -> None:
        db = SQLiteDatabase(url)
        await migrate.upgrade(db)
        await db.close()

    asyncio.run(prepare())
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, p)) for p in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]

    async def count() -> int:
        db = SQLiteDatabase(url)
        async with db.read() as tx:
            _page, total = await domains.page(tx, only=None, offset=0, limit=1)
        await db.close()
        return total

    assert asyncio.run(count()) == 3 * WRITES


@pytest.mark.anyio
async def test_a_cancelled_commit_finishes_before_the_connection_is_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelling a writer mid-commit must not hand its connection back (or close it) while
    the commit still runs in its thread: that is a use-after-close inside SQLite."""
    import threading
    import time

    from mailroom.store import sqlite as engine

    url = f"sqlite:///{tmp_path / 'cancel.db'}"
    db = SQLiteDatabase(url)
    await migrate.upgrade(db)
    real = engine._with_busy_timeout
    finished = threading.Event()

    def slow(conn: object, sql: str) -> None:
        if sql == "COMMIT":
            time.sleep(0.3)
        real(conn, sql)  # type: ignore[arg-type]
        if sql == "COMMIT":
            finished.set()

    monkeypatch.setattr(engine, "_with_busy_timeout", slow)
    now = datetime.now(UTC)

    async def write() -> None:
        async with db.write() as tx:
            values = {"name": "slow.example", "comment": "", "signup_enabled": False}
            await domains.insert_domain(tx, values | {"created_at": now, "updated_at": now})

    task = asyncio.get_running_loop().create_task(write())
    await asyncio.sleep(0.1)  # inside the commit's thread by now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished.is_set()  # the commit ended before the cancellation came through
    async with db.read() as tx:
        assert await domains.get(tx, "slow.example") is not None
    await db.close()


async def insert_domain(db: SQLiteDatabase, name: str) -> None:
    """A domain named ``name``, in a write of its own."""
    now = datetime.now(UTC)
    async with db.write() as tx:
        values = {"name": name, "comment": "", "signup_enabled": False}
        await domains.insert_domain(tx, values | {"created_at": now, "updated_at": now})


@pytest.mark.anyio
async def test_a_write_that_cannot_take_the_lock_fails_and_leaves_the_writer_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the write lock past the busy timeout: the write (alone or in a
    unit of work) is Unavailable, and once the lock is free the next write goes through."""
    import sqlite3

    from mailroom.errors import Unavailable
    from mailroom.store import sqlite as engine

    path = tmp_path / "busy.db"
    db = SQLiteDatabase(f"sqlite:///{path}")
    await migrate.upgrade(db)
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_MS", 50)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    with pytest.raises(Unavailable):
        await insert_domain(db, "alone.example")
    with pytest.raises(Unavailable):
        async with db.unit_of_work():
            await insert_domain(db, "unit.example")
    other.execute("ROLLBACK")
    other.close()
    async with db.unit_of_work():
        await insert_domain(db, "after.example")
    async with db.read() as tx:
        assert await domains.get(tx, "after.example") is not None
        assert await domains.get(tx, "alone.example") is None
    await db.close()


@pytest.mark.anyio
async def test_a_write_cancelled_while_waiting_for_the_lock_leaves_no_transaction_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait for another process's lock runs in a thread; cancelled meanwhile, the thread's
    BEGIN may still succeed after the lock frees: it must not stay open on the writer."""
    import sqlite3
    import threading

    from mailroom.store import sqlite as engine

    path = tmp_path / "cancel-begin.db"
    db = SQLiteDatabase(f"sqlite:///{path}")
    await migrate.upgrade(db)
    real = engine._with_busy_timeout
    waiting, go, began = threading.Event(), threading.Event(), threading.Event()

    def held_up(raw: sqlite3.Connection, sql: str) -> None:
        if sql == "BEGIN IMMEDIATE":
            waiting.set()
            go.wait(5)
        real(raw, sql)
        if sql == "BEGIN IMMEDIATE":
            began.set()

    monkeypatch.setattr(engine, "_with_busy_timeout", held_up)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    task = asyncio.get_running_loop().create_task(insert_domain(db, "cancelled.example"))
    await asyncio.to_thread(waiting.wait, 5)
    task.cancel()
    other.execute("ROLLBACK")
    other.close()
    go.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert began.is_set()  # the thread's BEGIN went through after all
    await insert_domain(db, "next.example")
    async with db.read() as tx:
        assert await domains.get(tx, "next.example") is not None
        assert await domains.get(tx, "cancelled.example") is None
    await db.close()
