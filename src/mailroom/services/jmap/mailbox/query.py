"""``Mailbox/query`` and ``Mailbox/queryChanges`` (RFC 8621 §2.3, §2.4).

Labels nest by name (``_mailboxes.py``): ``sortAsTree`` puts each mailbox right after its
parent, ``filterAsTree`` keeps a mailbox only when its parents match too. The query state
is the account's state. ``Mailbox/queryChanges`` reads the change log: every mailbox
created, changed or destroyed since is ``removed``, and those of them in the results now are
``added`` at their index (RFC 8620 §5.6 allows removing ids the old results did not hold).
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field

from mailroom.registry import Context
from mailroom.services.jmap._accounts import account_of, changes_since, state
from mailroom.services.jmap._api import MAIL, method
from mailroom.services.jmap._errors import MethodError
from mailroom.services.jmap._mailboxes import mailbox_id, to_mailbox, tree
from mailroom.services.jmap._query import FilterOperatorBase, window
from mailroom.services.jmap._types import (
    AddedItem,
    Comparator,
    Int,
    JmapId,
    QueryChangesResponse,
    QueryResponse,
    State,
    UnsignedInt,
)
from mailroom.services.jmap.mailbox.changes import MAX_CHANGES
from mailroom.services.mail.labels import ensure_system_labels
from mailroom.store import changelog
from mailroom.store import mailbox_queries as queries


class MailboxFilterCondition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parentId: JmapId | None = None
    name: str | None = Field(default=None, max_length=255)
    role: str | None = Field(default=None, max_length=64)
    hasAnyRole: bool | None = None
    isSubscribed: bool | None = None


class MailboxFilterOperator(FilterOperatorBase):
    conditions: Annotated[list[MailboxFilter], Field(max_length=100)]


MailboxFilter = Union[MailboxFilterOperator, MailboxFilterCondition]  # noqa: UP007
MailboxFilterOperator.model_rebuild()

SORTS = {"sortOrder", "name", "parentId"}


def _matches(box: dict[str, Any], f: MailboxFilter) -> bool:
    if isinstance(f, MailboxFilterOperator):
        results = (_matches(box, c) for c in f.conditions)
        if f.operator == "AND":
            return all(results)
        if f.operator == "OR":
            return any(results)
        return not any(results)
    given = f.model_fields_set
    if "parentId" in given and box["parentId"] != f.parentId:
        return False
    if "name" in given and (f.name is None or f.name.casefold() not in box["name"].casefold()):
        return False
    if "role" in given and box["role"] != f.role:
        return False
    if f.hasAnyRole is not None and (box["role"] is not None) != f.hasAnyRole:
        return False
    return not (f.isSubscribed is not None and box["isSubscribed"] != f.isSubscribed)


def _sort_key(sort: list[Comparator]) -> Any:
    for c in sort:
        if c.property not in SORTS:
            raise MethodError("unsupportedSort", f"cannot sort mailboxes by {c.property}")
        if c.collation is not None and c.collation not in (
            "i;ascii-numeric",
            "i;ascii-casemap",
            "i;unicode-casemap",
        ):
            raise MethodError("unsupportedSort", f"unknown collation {c.collation}")

    def key(box: dict[str, Any]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for c in sort:
            value = box[c.property]
            if isinstance(value, str):
                value = value.casefold()
            parts.append(_Ordered(value, c.isAscending))
        parts.append(_Ordered(int(box["id"][1:]), True))
        return tuple(parts)

    return key


class _Ordered:
    """A sort key part that may be descending, and where null sorts first."""

    __slots__ = ("asc", "value")

    def __init__(self, value: Any, asc: bool) -> None:
        self.value = value
        self.asc = asc

    def __lt__(self, other: _Ordered) -> bool:
        a, b = (self.value, other.value) if self.asc else (other.value, self.value)
        if a is None or b is None:
            return a is None and b is not None
        return bool(a < b)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Ordered) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]


def _ancestors(box: dict[str, Any], every: dict[str, dict[str, Any]]) -> list[str]:
    out: list[str] = []
    parent = box["parentId"]
    while parent is not None and parent in every and parent not in out:
        out.append(parent)
        parent = every[parent]["parentId"]
    return out


def _as_tree(boxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """RFC 8621 sortAsTree: each mailbox right after its parent (siblings in sort order); a
    mailbox whose parent is not in the results comes where it sorted."""
    present = {b["id"] for b in boxes}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for b in boxes:
        children.setdefault(b["parentId"] if b["parentId"] in present else None, []).append(b)
    out: list[dict[str, Any]] = []

    def walk(parent: str | None) -> None:
        for b in children.get(parent, []):
            out.append(b)
            walk(b["id"])

    walk(None)
    return out


@method("Mailbox/query", capability=MAIL)
async def mailbox_query(
    ctx: Context,
    accountId: JmapId,
    filter: MailboxFilter | None = None,
    sort: Annotated[list[Comparator], Field(max_length=10)] | None = None,
    position: Int = 0,
    anchor: JmapId | None = None,
    anchorOffset: Int = 0,
    limit: UnsignedInt | None = None,
    calculateTotal: bool = False,
    sortAsTree: bool = False,
    filterAsTree: bool = False,
) -> QueryResponse:
    """The account's mailbox ids matching ``filter``, sorted (default: sortOrder, then name)."""
    user_id = account_of(ctx, accountId)
    order = sort or [Comparator(property="sortOrder"), Comparator(property="name")]
    key = _sort_key(order)
    await ensure_system_labels(ctx, user_id)
    async with ctx.rt.db.read() as tx:
        current = await state(tx, user_id)
        t = await tree(tx, user_id)
        boxes = [to_mailbox(r, t) for r in await queries.label_counts(tx, user_id)]
    every = {b["id"]: b for b in boxes}
    if filter is not None:
        boxes = [b for b in boxes if _matches(b, filter)]
        if filterAsTree:  # a mailbox only when its parents match too
            kept = {b["id"] for b in boxes}
            boxes = [b for b in boxes if all(p in kept for p in _ancestors(b, every))]
    boxes.sort(key=key)
    if sortAsTree:
        boxes = _as_tree(boxes)
    ids = [b["id"] for b in boxes]
    start, page, cut = window(ids, position=position, anchor=anchor, anchor_offset=anchorOffset, limit=limit)
    return QueryResponse(
        accountId=accountId,
        queryState=current,
        canCalculateChanges=True,
        position=start,
        ids=page,
        total=len(ids) if calculateTotal else None,
        limit=cut,
    )


@method("Mailbox/queryChanges", capability=MAIL)
async def mailbox_query_changes(
    ctx: Context,
    accountId: JmapId,
    sinceQueryState: State,
    filter: MailboxFilter | None = None,
    sort: Annotated[list[Comparator], Field(max_length=10)] | None = None,
    maxChanges: UnsignedInt | None = None,
    upToId: JmapId | None = None,
    calculateTotal: bool = False,
) -> QueryChangesResponse:
    """How the results of a Mailbox/query changed since ``sinceQueryState``."""
    user_id = account_of(ctx, accountId)
    key = _sort_key(sort or [Comparator(property="sortOrder"), Comparator(property="name")])
    await ensure_system_labels(ctx, user_id)
    async with ctx.rt.db.read() as tx:
        found = await changes_since(tx, user_id, changelog.Kind.LABEL, sinceQueryState, None, MAX_CHANGES)
        if found.has_more_changes:
            raise MethodError("cannotCalculateChanges", "too many changes: query again")
        current = await state(tx, user_id)
        t = await tree(tx, user_id)
        boxes = [to_mailbox(r, t) for r in await queries.label_counts(tx, user_id)]
    if filter is not None:
        boxes = [b for b in boxes if _matches(b, filter)]
    boxes.sort(key=key)
    ids = [b["id"] for b in boxes]
    touched = [mailbox_id(i) for i in (*found.created, *found.updated, *found.destroyed)]
    if maxChanges is not None and len(touched) > maxChanges:
        raise MethodError("tooManyChanges", f"{len(touched)} changes, more than maxChanges")
    position = {box_id: n for n, box_id in enumerate(ids)}
    added = sorted(
        (AddedItem(id=i, index=position[i]) for i in touched if i in position), key=lambda a: a.index
    )
    if upToId is not None and upToId in position:
        added = [a for a in added if a.index <= position[upToId]]
    return QueryChangesResponse(
        accountId=accountId,
        oldQueryState=sinceQueryState,
        newQueryState=current,
        total=len(ids) if calculateTotal else None,
        removed=touched,
        added=added,
    )
