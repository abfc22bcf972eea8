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
