"""mail.labels.*: the caller's labels with their counts; creating, renaming, deleting their own.

System labels (inbox, sent, drafts, spam, trash, archive, starred, important, postponed)
exist in every mailbox and cannot be renamed or deleted; a user label may not take a system
label's name in any case. Deleting a user label takes it off every email; the mail stays.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mailroom.domain.numbers import Id
from mailroom.errors import Conflict, NotFound
from mailroom.registry import DELETE, GET, PATCH, POST, Context, UserSelf
from mailroom.services.mail._actions import wake_postponed
from mailroom.services.mail._api import api
from mailroom.services.mail._mailbox import user_id_of
from mailroom.services.mail._push import announce_labels
from mailroom.store import labels as label_store
from mailroom.store import mailbox_queries as queries
from mailroom.store.engine import Tx
from mailroom.store.mailbox_queries import LabelRecord


def _check_name(value: str) -> str:
    if value != value.strip():
        raise ValueError("must not start or end with white space")
    return value


#: Labels nest by name (``Work/Clients`` is inside ``Work``), for IMAP and JMAP alike.
DELIMITER = "/"
MAX_LABEL_NAME = 100

LabelName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_LABEL_NAME, pattern=r"^[^\x00-\x1f\x7f]+$", examples=["Receipts"]),
    AfterValidator(_check_name),
]


class Label(BaseModel):
    """A label and how much mail carries it."""

    id: int
    name: str
    kind: Literal["system", "user"]
    threads_total: int
    threads_unread: int = Field(description="Threads with at least one unread email.")
    emails_total: int
    emails_unread: int


class LabelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: LabelName


class LabelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: LabelName


def _label(row: LabelRecord) -> Label:
    return Label.model_validate(row, from_attributes=True)


async def ensure_system_labels(ctx: Context, user_id: int) -> None:
    """A mailbox that never got mail has no system labels yet: create them (once)."""
    async with ctx.rt.db.read() as tx:
        known = await label_store.ids_by_name(tx, user_id)
    if any(name not in known for name in label_store.SYSTEM_LABELS):
        async with ctx.rt.db.write() as tx:
            await label_store.ensure_system(tx, user_id, ctx.rt.clock.now())


async def _one(tx: Tx, user_id: int, label_id: int) -> Label:
    rows = await queries.label_counts(tx, user_id, label_id)
    if not rows:
        raise NotFound.of("label", label_id)
    return _label(rows[0])


async def check_name_free(tx: Tx, user_id: int, name: str) -> None:
    if name.lower() in label_store.SYSTEM_LABELS:
        raise Conflict(f"{name} is the name of a system label", field="name")
    if await queries.label_by_name(tx, user_id, name) is not None:
        raise Conflict(f"there is already a label {name}", field="name")


async def _own_label(tx: Tx, user_id: int, label_id: int, verb: str) -> LabelRecord:
    row = await queries.label_by_id(tx, user_id, label_id)
    if row is None:
        raise NotFound.of("label", label_id)
    if row.kind == "system":
        raise Conflict(f"the system label {row.name} cannot be {verb}")
    return row


@api.method("mail.labels.list", http=GET("/labels"), access=UserSelf())
async def list_labels(ctx: Context) -> list[Label]:
    """The caller's labels, system ones first, with total and unread thread and email counts."""
    user_id = user_id_of(ctx)
    await ensure_system_labels(ctx, user_id)
    await wake_postponed(ctx.rt, user_id)
    async with ctx.rt.db.read() as tx:
        return [_label(r) for r in await queries.label_counts(tx, user_id)]


@api.method("mail.labels.get", http=GET("/labels/{id}"), access=UserSelf())
async def get_label(ctx: Context, id: Id) -> Label:
    """One of the caller's labels with its counts."""
    user_id = user_id_of(ctx)
    await wake_postponed(ctx.rt, user_id)
    async with ctx.rt.db.read() as tx:
        return await _one(tx, user_id, id)


@api.method("mail.labels.create", http=POST("/labels", status=201), access=UserSelf())
async def create_label(ctx: Context, label: LabelCreate) -> Label:
    """Create a user label (``conflict`` when the name is taken or a system label's)."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.write() as tx:
        await check_name_free(tx, user_id, label.name)
        label_id = await queries.create_label(tx, user_id, label.name, ctx.rt.clock.now())
        created = await _one(tx, user_id, label_id)
    await announce_labels(ctx.rt, user_id)
    return created


@api.method("mail.labels.update", http=PATCH("/labels/{id}"), access=UserSelf())
async def rename_label(ctx: Context, id: Id, label: LabelUpdate) -> Label:
    """Rename one of the caller's user labels; system labels cannot be renamed."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.write() as tx:
        row = await _own_label(tx, user_id, id, "renamed")
        if row.name != label.name:
            await check_name_free(tx, user_id, label.name)
            # Labels nest by name: the ones below go with it (as JMAP's Mailbox/set and IMAP's
            # RENAME, RFC 9051 §6.3.6).
            below = await queries.child_label_names(tx, user_id, row.name, DELIMITER)
            if label.name.startswith(row.name + DELIMITER):
                raise Conflict(f"{label.name} is inside {row.name}", field="name")
            if any(len(label.name + c[len(row.name) :]) > MAX_LABEL_NAME for c in below):
                raise Conflict(f"a child's full name would pass {MAX_LABEL_NAME} characters", field="name")
            await queries.rename_label_tree(tx, user_id, id, row.name, label.name, DELIMITER)
        renamed = await _one(tx, user_id, id)
    await announce_labels(ctx.rt, user_id)
    return renamed


@api.method("mail.labels.delete", http=DELETE("/labels/{id}"), access=UserSelf())
async def delete_label(ctx: Context, id: Id) -> None:
    """Delete one of the caller's user labels (the mail keeps its other labels)."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.write() as tx:
        await _own_label(tx, user_id, id, "deleted")
        await queries.delete_label(tx, user_id, id)
    await announce_labels(ctx.rt, user_id)
