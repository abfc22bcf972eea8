"""admin.queue.*: the outbound queue, for global administrators: look, retry now, delete."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from pydantic import Field

from mailroom.delivery.outbound import wake_queue
from mailroom.domain.numbers import Id
from mailroom.domain.outbound import DeliveryStatus, QueueEntry
from mailroom.domain.paging import DEFAULT_LIMIT, Limit, Offset, Page
from mailroom.domain.sorting import QueueSort
from mailroom.errors import Conflict, NotFound
from mailroom.registry import DELETE, GET, POST, Admin, Context
from mailroom.services.admin._api import api
from mailroom.store import outbound as store
from mailroom.store.outbound import QueuedMessage, QueuedRecipient

QueueId = Annotated[Id, Field(description="Queue entry id.")]


def _entry(row: QueuedMessage, recipients: list[QueuedRecipient]) -> QueueEntry:
    statuses = [DeliveryStatus.model_validate(r, from_attributes=True) for r in recipients]
    return QueueEntry.model_validate(asdict(row) | {"recipients": statuses})


@api.method("admin.queue.list", http=GET("/queue"), access=Admin())
async def list_queue(
    ctx: Context,
    status: Annotated[
        Literal["queued", "done"] | None,
        Field(description="Only entries still queued, or only finished ones."),
    ] = None,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    sort: QueueSort = "-id",
) -> Page[QueueEntry]:
    """List outbound messages, newest first (or by ``sort``), with each recipient's delivery status."""
    async with ctx.rt.db.read() as tx:
        rows, total = await store.page(tx, status=status, offset=offset, limit=limit, sort=sort)
        recipients = await store.recipients_of(tx, [r.id for r in rows])
    items = [_entry(r, recipients[r.id]) for r in rows]
    return Page[QueueEntry](items=items, total=total, offset=offset, limit=limit)


@api.method("admin.queue.get", http=GET("/queue/{id}"), access=Admin())
async def get_entry(ctx: Context, id: QueueId) -> QueueEntry:
    """Show one outbound message and its recipients' delivery status."""
    async with ctx.rt.db.read() as tx:
        row = await store.get(tx, id)
        if row is None:
            raise NotFound.of("queue entry", id)
        return _entry(row, await store.recipients(tx, id))


@api.method("admin.queue.retry", http=POST("/queue/{id}/retry"), access=Admin())
async def retry_entry(ctx: Context, id: QueueId) -> QueueEntry:
    """Make a queued message due now (deferred recipients are tried on the next pass).

    A finished message (every recipient delivered or failed) cannot be retried: 409.
    """
    async with ctx.rt.db.write() as tx:
        row = await store.get(tx, id)
        if row is None:
            raise NotFound.of("queue entry", id)
        if not await store.retry_now(tx, id, ctx.rt.clock.now()):
            raise Conflict(f"queue entry {id} is finished; nothing to retry")
        row = await store.get(tx, id)
        assert row is not None
        entry = _entry(row, await store.recipients(tx, id))
    wake_queue(ctx.rt)
    return entry


@api.method("admin.queue.delete", http=DELETE("/queue/{id}"), access=Admin())
async def delete_entry(ctx: Context, id: QueueId) -> None:
    """Remove a message from the queue: its waiting recipients are never tried (no DSN)."""
    async with ctx.rt.db.write() as tx:
        if not await store.delete_entry(tx, id):
            raise NotFound.of("queue entry", id)
