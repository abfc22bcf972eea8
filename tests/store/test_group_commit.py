"""store/group_commit.py: items submitted together share one durable transaction; one that
fails undoes only its own rows and fails only its own caller; ``after_commit`` sees the rest."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.errors import Conflict
from mailroom.store import domains
from mailroom.store.engine import Tx
from mailroom.store.group_commit import GroupCommit
from mailroom.store.schema import domain_names

pytestmark = pytest.mark.anyio


async def _names(mailroom: Mailroom) -> set[str]:
    async with mailroom.runtime.db.read() as tx:
        return {str(r["name"]) for r in await tx.all(select(domain_names.c.name))}


def _counting_writes(mailroom: Mailroom, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    db = mailroom.runtime.db
    real = db.write
    writes: list[bool] = []

    def write(*, durable: bool = False) -> contextlib.AbstractAsyncContextManager[Tx]:
        writes.append(durable)
        return real(durable=durable)

    monkeypatch.setattr(db, "write", write)
    return writes


async def test_items_submitted_together_share_a_durable_transaction_and_fail_alone(
    mailroom: Mailroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with mailroom.runtime.db.write() as tx:
        await domains.claim_name(tx, "taken.example", "relay")
    writes = _counting_writes(mailroom, monkeypatch)
    committed: list[list[tuple[str, str]]] = []

    async def claim(tx: Tx, name: str) -> str:
        await domains.claim_name(tx, name, "relay")
        return name.upper()

    async def after(done: list[tuple[str, str]]) -> None:
        committed.append(done)
        assert {"a.example", "b.example"} <= await _names(mailroom)  # already on disk

    group: GroupCommit[str, str] = GroupCommit(mailroom.runtime.db, claim, after)
    names = ["first.example", "a.example", "taken.example", "b.example"]
    results = await asyncio.gather(*(group.submit(n) for n in names), return_exceptions=True)
    alone = await group.submit("alone.example")  # the committer is idle: at once, alone
    assert alone == "ALONE.EXAMPLE"

    assert [results[0], results[1], results[3]] == ["FIRST.EXAMPLE", "A.EXAMPLE", "B.EXAMPLE"]
    assert isinstance(results[2], Conflict)  # its savepoint rolled back; the others stayed
    # Submitted before the committer ran: one transaction, one fsync, for all four; then
    # the one submitted alone had a transaction of its own.
    assert writes == [True, True]
    assert committed == [
        [("first.example", "FIRST.EXAMPLE"), ("a.example", "A.EXAMPLE"), ("b.example", "B.EXAMPLE")],
        [("alone.example", "ALONE.EXAMPLE")],
    ]
    assert await _names(mailroom) == {
        "taken.example",
        "first.example",
        "a.example",
        "b.example",
        "alone.example",
    }


async def test_a_failed_transaction_fails_every_item_of_the_batch(
    mailroom: Mailroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = mailroom.runtime.db
    real = db.write

    @contextlib.asynccontextmanager
    async def failing_commit(*, durable: bool = False) -> AsyncIterator[Tx]:
        async with real(durable=durable) as tx:
            yield tx
            raise OSError("the disk is gone")  # as a failed commit would: the rows roll back

    monkeypatch.setattr(db, "write", failing_commit)
    seen: list[Any] = []

    async def claim(tx: Tx, name: str) -> str:
        await domains.claim_name(tx, name, "relay")
        return name

    async def after(done: list[tuple[str, str]]) -> None:
        seen.append(done)

    group: GroupCommit[str, str] = GroupCommit(db, claim, after)
    results = await asyncio.gather(*(group.submit(f"n{i}.example") for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    assert seen == []
    monkeypatch.setattr(db, "write", real)
    assert await _names(mailroom) == set()
