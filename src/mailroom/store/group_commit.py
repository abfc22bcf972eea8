"""Group commit: writes that arrive while a durable transaction commits share the next one.

A durable commit waits for the disk (an fsync of SQLite's WAL, PostgreSQL's WAL flush);
with several writers at once, each paying for its own would serialise them on the disk. A
:class:`GroupCommit` runs one piece of work (``work(tx, item)``) per submitted item:

* alone, an item finds the committer idle and runs at once in a transaction of its own,
  without a savepoint (a failure rolls the whole transaction back);
* items submitted while a commit is under way wait, and the next transaction takes up to
  :attr:`GroupCommit.MAX_BATCH` of them, each in a savepoint, so that one failing undoes
  only its own rows and fails only its own caller;
* every caller's ``submit`` returns after the commit is on disk (``write(durable=True)``),
  so a reply sent then (an SMTP ``250``) is a promise kept after a crash;
* ``after_commit`` gets the items that committed, with their results, once every caller of
  the batch has its answer (ingest publishes push events there).

Ingest (delivery/ingest.py) is the user: the group commit is storage's business (how many
commits, savepoints, fsyncs), the delivery decides what one item writes.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from mailroom.store._prepared import savepoint
from mailroom.store.tx import Database, Tx

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """One committer per database and kind of work; see the module's docstring."""

    #: Items in one transaction at most: a batch's rows stay small, and its callers' wait too.
    MAX_BATCH = 64

    def __init__(
        self,
        db: Database,
        work: Callable[[Tx, Item], Awaitable[Result]],
        after_commit: Callable[[list[tuple[Item, Result]]], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.work = work
        self.after_commit = after_commit
        self.pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self.running = False
        self.task: asyncio.Future[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Run ``work(tx, item)`` in the next durable transaction; its result once committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.pending.append((item, future))
        if not self.running:
            self.running = True
            # A context of its own: the committer serves every caller, and must never join
            # a unit of work (Database.unit_of_work) of the caller that happened to start it.
            loop = asyncio.get_running_loop()
            self.task = loop.create_task(self._drain(), context=contextvars.Context())
        return await future

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed and ``after_commit`` has run.

        For shutdown, before the database closes: callers get their answer before
        ``after_commit`` runs, so a caller that returned says nothing about the committer's
        task, which may still hold a connection (ingest's announcement reads the store).
        """
        while self.task is not None and not self.task.done():
            await asyncio.wait([self.task])

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[: self.MAX_BATCH], self.pending[self.MAX_BATCH :]
                await self._commit(batch)
        finally:
            self.running = False

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        outcomes: list[Result | BaseException] = []
        try:
            async with self.db.write(durable=True) as tx:
                if len(batch) == 1:
                    # Alone in its transaction, an item needs no savepoint (two statements
                    # more): if it fails, the whole transaction is rolled back.
                    outcomes.append(await self.work(tx, batch[0][0]))
                else:
                    for item, _ in batch:
                        try:
                            async with savepoint(tx):
                                outcomes.append(await self.work(tx, item))
                        except Exception as exc:
                            outcomes.append(exc)
        except BaseException as exc:  # the transaction failed: nothing of the batch is stored
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        committed: list[tuple[Item, Result]] = []
        for (item, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not future.done():
                    future.set_exception(outcome)
                continue
            committed.append((item, outcome))
            if not future.done():
                future.set_result(outcome)
        # After the commit and the answers: an item whose savepoint failed stored nothing.
        if self.after_commit is not None and committed:
            await self.after_commit(committed)
