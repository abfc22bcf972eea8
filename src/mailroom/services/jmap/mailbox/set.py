"""``Mailbox/set`` (RFC 8621 §2.5): create, rename and destroy user labels.

System mailboxes (those with a role, and Postponed) cannot be renamed or destroyed; labels
do not nest (``parentId`` must stay null); every mailbox is subscribed; ``sortOrder`` is the
server's. ``onDestroyRemoveEmails``: without it a mailbox with email is ``mailboxHasEmail``;
with it, emails in no other mailbox are destroyed and the others only lose the label.
"""

from __future__ import annotations

from typing import Any

from mailroom.errors import Conflict
from mailroom.registry import Context
from mailroom.services.jmap._accounts import account_of, check_if_in_state, state
from mailroom.services.jmap._api import MAIL, method
from mailroom.services.jmap._mailboxes import PROPERTIES, USER_SORT_ORDER, label_id, mailbox_id, to_mailbox
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
from mailroom.store import jmap as jmap_store
from mailroom.store import mailbox_queries as queries
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
    return value


def _check_properties(props: dict[str, Any], current: dict[str, Any] | None) -> str | None:
    """The new name, if any; a SetError for anything else that would change."""
    name: str | None = None
    for key, value in props.items():
        if key == "name":
            name = _check_name(value)
        elif key not in PROPERTIES:
            raise _invalid(key, f"unknown property {key}")
        elif key in SERVER_SET:
            if current is None or current[key] != value:
                raise _invalid(key, f"{key} is set by the server")
        elif key == "parentId":
            if value is not None:
                raise _invalid(key, "mailboxes do not nest: parentId must be null")
        elif key == "role":
            if value != (current["role"] if current else None):
                raise _invalid(key, "roles belong to the system mailboxes and cannot be given or taken")
        elif key == "isSubscribed":
            if value is not True:
                raise _invalid(key, "every mailbox is subscribed")
        elif key == "sortOrder":
            expected = current["sortOrder"] if current else USER_SORT_ORDER
            if value != expected:
                raise _invalid(key, "sortOrder is the server's")
    return name


async def _row(ctx: Context, user_id: int, value: str) -> LabelRecord | None:
    n = label_id(value)
    if n is None:
        return None
    async with ctx.rt.db.read() as tx:
        rows = await queries.label_counts(tx, user_id, n)
    return rows[0] if rows else None


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
            name = _check_properties(props, None)
            if name is None:
                raise _invalid("name", "name is required")
            async with ctx.rt.db.write() as tx:
                try:
                    await check_name_free(tx, user_id, name)
                except Conflict as exc:
                    raise _invalid("name", exc.message) from None
                new_id = await queries.create_label(tx, user_id, name, now)
                [row] = await queries.label_counts(tx, user_id, new_id)
            box = to_mailbox(row)
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
            current = to_mailbox(row)
            name = _check_properties(flatten_patch(patch), current)
            if name is not None and name != current["name"]:
                if row.kind == "system":
                    raise _Refused(set_error("forbidden", "system mailboxes cannot be renamed"))
                async with ctx.rt.db.write() as tx:
                    try:
                        await check_name_free(tx, user_id, name)
                    except Conflict as exc:
                        raise _invalid("name", exc.message) from None
                    await queries.rename_label(tx, user_id, row.id, name)
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
