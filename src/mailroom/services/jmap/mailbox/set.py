"""``Mailbox/set`` (RFC 8621 §2.5): create, rename and destroy user labels.

System mailboxes (those with a role, and Postponed) cannot be renamed, moved or destroyed;
user mailboxes nest by name (``parentId`` P makes the label ``<P's label>/<name>``; moving
or renaming a mailbox renames the labels of its children too), and a mailbox with children
cannot be destroyed (``mailboxHasChild``). ``sortOrder`` and ``isSubscribed`` (IMAP's
subscriptions, kept by label id) are settable on any mailbox. ``onDestroyRemoveEmails``: without it
a mailbox with email is ``mailboxHasEmail``; with it, emails in no other mailbox are
destroyed and the others only lose the label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom.errors import Conflict
from mailroom.registry import Context
from mailroom.services.jmap._accounts import account_of, check_if_in_state, state
from mailroom.services.jmap._api import MAIL, method
from mailroom.services.jmap._mailboxes import (
    DELIMITER,
    PROPERTIES,
    SYSTEM,
    label_id,
    mailbox_id,
    to_mailbox,
    tree,
)
from mailroom.services.jmap._request import created, resolve
from mailroom.services.jmap._set import (
    CreateMap,
    DestroyList,
    UpdateMap,
    check_set_size,
    flatten_patch,
    set_error,
    set_response,
)
from mailroom.services.jmap._types import JmapId, SetResponse, State
from mailroom.services.jmap.session import MAX_MAILBOX_NAME
from mailroom.services.mail._push import announce_labels
from mailroom.services.mail.labels import check_name_free, ensure_system_labels
from mailroom.store import emails as email_store
from mailroom.store import imap as imap_store
from mailroom.store import jmap as jmap_store
from mailroom.store import labels as label_store
from mailroom.store import mailbox_queries as queries
from mailroom.store.engine import Tx
from mailroom.store.mailbox_queries import LabelRecord

SERVER_SET = {"id", "totalEmails", "unreadEmails", "totalThreads", "unreadThreads", "myRights"}


class _Refused(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("type"))
        self.error = error


def _invalid(prop: str, why: str) -> _Refused:
    return _Refused(set_error("invalidProperties", why, [prop]))


def _check_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid("name", "name must be a non-empty string")
    if len(value) > MAX_MAILBOX_NAME:
        raise _invalid("name", f"name must be at most {MAX_MAILBOX_NAME} characters")
    if value != value.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise _invalid("name", "name must not start or end with white space nor hold control characters")
    if DELIMITER in value:
        raise _invalid("name", f"name must not hold {DELIMITER!r} (nest with parentId)")
    return value


@dataclass
class _Wanted:
    """What a create or update asks for (None: unchanged)."""

    name: str | None = None
    parent: str | None = None  # a mailbox id, when parentId is given
    parent_given: bool = False
    sort_order: int | None = None
    subscribed: bool | None = None


def _check_properties(ctx: Context, props: dict[str, Any], current: dict[str, Any] | None) -> _Wanted:
    """What would change; a SetError for anything that cannot."""
    wanted = _Wanted()
    for key, value in props.items():
        if key == "name":
            wanted.name = _check_name(value)
        elif key not in PROPERTIES:
            raise _invalid(key, f"unknown property {key}")
        elif key in SERVER_SET:
            if current is None or current[key] != value:
                raise _invalid(key, f"{key} is set by the server")
        elif key == "parentId":
            if value is not None and not isinstance(value, str):
                raise _invalid(key, "parentId is a mailbox id or null")
            wanted.parent_given = True
            wanted.parent = resolve(ctx, value) if value is not None else None
            if value is not None and wanted.parent is None:
                raise _invalid(key, f"no mailbox {value}")
        elif key == "role":
            if value != (current["role"] if current else None):
                raise _invalid(key, "roles belong to the system mailboxes and cannot be given or taken")
        elif key == "isSubscribed":
            if not isinstance(value, bool):
                raise _invalid(key, "isSubscribed is true or false")
            wanted.subscribed = value
        elif key == "sortOrder":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
                raise _invalid(key, "sortOrder is an unsigned integer below 2^31")
            wanted.sort_order = value
    return wanted


async def _full_name(ctx: Context, user_id: int, parent: str | None, leaf: str, moving: int | None) -> str:
    """The label name of mailbox ``leaf`` inside ``parent`` (``moving``: the label moved,
    which cannot go inside itself)."""
    if parent is None:
        return leaf
    n = label_id(parent)
    async with ctx.rt.db.read() as tx:
        names = {i: name for name, i in (await label_store.ids_by_name(tx, user_id)).items()}
    if n is None or n not in names:
        raise _invalid("parentId", f"no mailbox {parent}")
    if names[n] in SYSTEM:
        raise _invalid("parentId", "system mailboxes have no children")
    if moving is not None and (n == moving or names[n].startswith(names[moving] + DELIMITER)):
        raise _invalid("parentId", "a mailbox cannot go inside itself")
    full = names[n] + DELIMITER + leaf
    if len(full) > MAX_MAILBOX_NAME:
        raise _invalid("name", f"the mailbox's full name must be at most {MAX_MAILBOX_NAME} characters")
    return full


async def _row(ctx: Context, user_id: int, value: str) -> LabelRecord | None:
    n = label_id(value)
    if n is None:
        return None
    async with ctx.rt.db.read() as tx:
        rows = await queries.label_counts(tx, user_id, n)
    return rows[0] if rows else None


async def _children(tx: Tx, user_id: int, name: str) -> dict[str, int]:
    """``{name: id}`` of the labels below label ``name``."""
    return {
        n: i
        for n, i in (await label_store.ids_by_name(tx, user_id)).items()
        if n.startswith(name + DELIMITER)
    }


@method("Mailbox/set", capability=MAIL)
async def mailbox_set(
    ctx: Context,
    accountId: JmapId,
    ifInState: State | None = None,
    create: CreateMap | None = None,
    update: UpdateMap | None = None,
    destroy: DestroyList | None = None,
    onDestroyRemoveEmails: bool = False,
) -> SetResponse:
    """Create, rename and destroy the account's user mailboxes (labels)."""
    user_id = account_of(ctx, accountId)
    check_set_size(ctx, create, update, destroy)
    await ensure_system_labels(ctx, user_id)
    async with ctx.rt.db.read() as tx:
        old_state = await check_if_in_state(tx, user_id, ifInState)
    out_created: dict[str, dict[str, Any]] = {}
    not_created: dict[str, dict[str, Any]] = {}
    out_updated: dict[str, dict[str, Any] | None] = {}
    not_updated: dict[str, dict[str, Any]] = {}
    out_destroyed: list[str] = []
    not_destroyed: dict[str, dict[str, Any]] = {}
    changed = False
    now = ctx.rt.clock.now()

    for cid, props in (create or {}).items():
        try:
            wanted = _check_properties(ctx, props, None)
            if wanted.name is None:
                raise _invalid("name", "name is required")
            name = await _full_name(ctx, user_id, wanted.parent, wanted.name, None)
            async with ctx.rt.db.write() as tx:
                try:
                    await check_name_free(tx, user_id, name)
                except Conflict as exc:
                    raise _invalid("name", exc.message) from None
                new_id = await queries.create_label(tx, user_id, name, now)
                if wanted.sort_order is not None:
                    await jmap_store.set_sort_order(tx, user_id, new_id, wanted.sort_order)
                if wanted.subscribed is False:
                    await imap_store.set_label_subscribed(tx, user_id, new_id, False)
                [row] = await queries.label_counts(tx, user_id, new_id)
                t = await tree(tx, user_id)
            box = to_mailbox(row, t)
            created(ctx, cid, box["id"])
            out_created[cid] = {k: v for k, v in box.items() if k not in props}
            changed = True
        except _Refused as refused:
            not_created[cid] = refused.error

    for given, patch in (update or {}).items():
        target = resolve(ctx, given)
        try:
            found = await _row(ctx, user_id, target) if target is not None else None
            if found is None:
                raise _Refused(set_error("notFound", f"no mailbox {given}"))
            row = found
            async with ctx.rt.db.read() as tx:
                current = to_mailbox(row, await tree(tx, user_id))
            wanted = _check_properties(ctx, flatten_patch(patch), current)
            moved = wanted.parent_given and wanted.parent != current["parentId"]
            renamed = wanted.name is not None and wanted.name != current["name"]
            if (moved or renamed) and row.kind == "system":
                raise _Refused(set_error("forbidden", "system mailboxes cannot be renamed or moved"))
            if moved or renamed:
                leaf = wanted.name if wanted.name is not None else str(current["name"])
                if not renamed and DELIMITER in leaf:  # a top label named with "/": keep its last part
                    leaf = leaf.rpartition(DELIMITER)[2]
                parent = wanted.parent if wanted.parent_given else current["parentId"]
                name = await _full_name(ctx, user_id, parent, leaf, row.id)
                old = row.name
                async with ctx.rt.db.write() as tx:
                    try:
                        await check_name_free(tx, user_id, name)
                    except Conflict as exc:
                        raise _invalid("name", exc.message) from None
                    below = await _children(tx, user_id, old)
                    if any(len(name + child[len(old) :]) > MAX_MAILBOX_NAME for child in below):
                        raise _invalid(
                            "name", f"a child's full name would pass {MAX_MAILBOX_NAME} characters"
                        )
                    await queries.rename_label_tree(tx, user_id, row.id, old, name, DELIMITER)
                changed = True
            if wanted.sort_order is not None and wanted.sort_order != current["sortOrder"]:
                async with ctx.rt.db.write() as tx:
                    await jmap_store.set_sort_order(tx, user_id, row.id, wanted.sort_order)
                changed = True
            if wanted.subscribed is not None and wanted.subscribed != current["isSubscribed"]:
                async with ctx.rt.db.write() as tx:
                    await imap_store.set_label_subscribed(tx, user_id, row.id, wanted.subscribed)
                changed = True
            out_updated[given] = None
        except _Refused as refused:
            not_updated[given] = refused.error

    for given in destroy or []:
        target = resolve(ctx, given)
        try:
            doomed = await _row(ctx, user_id, target) if target is not None else None
            if doomed is None:
                raise _Refused(set_error("notFound", f"no mailbox {given}"))
            if doomed.kind == "system":
                raise _Refused(set_error("forbidden", "system mailboxes cannot be destroyed"))
            async with ctx.rt.db.read() as tx:
                below = await _children(tx, user_id, doomed.name)
            if below:
                raise _Refused(set_error("mailboxHasChild", "the mailbox has child mailboxes"))
            if doomed.emails_total and not onDestroyRemoveEmails:
                raise _Refused(set_error("mailboxHasEmail", "the mailbox has email (onDestroyRemoveEmails)"))
            async with ctx.rt.db.write() as tx:
                only_here = await jmap_store.emails_only_in(tx, user_id, doomed.id)
                if only_here:
                    rows = await email_store.delete_emails(tx, user_id, only_here)
                    await queries.release_blobs(tx, ctx.rt.blobs, [r.blob_sha for r in rows])
                await queries.delete_label(tx, user_id, doomed.id)
            out_destroyed.append(given)
            changed = True
        except _Refused as refused:
            not_destroyed[given] = refused.error

    if changed:
        await announce_labels(ctx.rt, user_id)
    async with ctx.rt.db.read() as tx:
        new_state = await state(tx, user_id)
    return set_response(
        accountId,
        old_state,
        new_state,
        created=out_created,
        updated=out_updated,
        destroyed=out_destroyed,
        not_created=not_created,
        not_updated=not_updated,
        not_destroyed=not_destroyed,
    )


__all__ = ["mailbox_id", "mailbox_set"]
