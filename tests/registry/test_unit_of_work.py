"""Database.unit_of_work: writes inside share one transaction, reads see them, errors undo all."""

from __future__ import annotations

import asyncio

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.errors import Conflict, InternalError, NotFound
from mailroom.store import audit as audit_store
from mailroom.store import domains as store
from tests.conftest import Actor

pytestmark = pytest.mark.anyio


def _values(name: str, clock_now: object) -> dict[str, object]:
    return {
        "name": name,
        "comment": "",
        "signup_enabled": False,
        "created_at": clock_now,
        "updated_at": clock_now,
    }


async def test_writes_join_one_transaction_and_reads_see_them(mailroom: Mailroom) -> None:
    db = mailroom.runtime.db
    now = mailroom.runtime.clock.now()
    async with db.unit_of_work() as unit:
        assert not unit.wrote
        async with db.write() as tx:
            await store.insert_domain(tx, _values("one.example", now))
        first = unit.tx
        async with db.write() as tx:
            assert tx is first  # the same transaction, not a new one
            await store.insert_domain(tx, _values("two.example", now))
        async with db.read() as tx:  # read-your-writes before the commit
            assert await store.get(tx, "two.example") is not None
    async with db.read() as tx:
        assert (await store.get(tx, "one.example")) is not None
        assert (await store.get(tx, "two.example")) is not None


async def test_an_error_undoes_every_write_of_the_unit(mailroom: Mailroom) -> None:
    db = mailroom.runtime.db
    now = mailroom.runtime.clock.now()

    async def twice() -> None:
        async with db.unit_of_work():
            async with db.write() as tx:
                await store.insert_domain(tx, _values("kept.example", now))
            async with db.write() as tx:
                await store.insert_domain(tx, _values("kept.example", now))  # a duplicate

    with pytest.raises(Conflict):
        await twice()
    async with db.read() as tx:
        assert await store.get(tx, "kept.example") is None


async def test_tasks_outliving_the_unit_get_their_own_transactions(mailroom: Mailroom) -> None:
    db = mailroom.runtime.db
    now = mailroom.runtime.clock.now()
    started = asyncio.Event()
    release = asyncio.Event()

    async def later() -> None:
        started.set()
        await release.wait()
        async with db.write() as tx:  # the unit has ended by now
            await store.insert_domain(tx, _values("late.example", now))

    async with db.unit_of_work():
        task = asyncio.get_running_loop().create_task(later())
        await started.wait()
    release.set()
    await task
    async with db.read() as tx:
        assert await store.get(tx, "late.example") is not None


async def test_audited_change_and_its_entry_commit_together(
    mailroom: Mailroom, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    await mailroom.registry.call(
        "admin.domains.create", {"domain": {"name": "audited.example"}}, principal=admin.principal
    )
    entries = await mailroom.registry.call("admin.audit.list", {}, principal=admin.principal)
    assert any(
        e["method"] == "admin.domains.create" and e["target"] == "audited.example" for e in entries["items"]
    )

    # An entry that cannot be written takes the change back with it.
    async def broken(tx: object, values: object) -> None:
        raise RuntimeError("the audit table is gone")

    monkeypatch.setattr(audit_store, "add", broken)
    with pytest.raises(InternalError):
        await mailroom.registry.call(
            "admin.domains.create", {"domain": {"name": "undone.example"}}, principal=admin.principal
        )
    with pytest.raises(NotFound):
        await mailroom.registry.call(
            "admin.domains.get", {"name": "undone.example"}, principal=admin.principal
        )
