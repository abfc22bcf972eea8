"""``VacationResponse/get|set`` (RFC 8621 §8): the user's auto-reply.

One object, id ``singleton``. The auto-reply keeps days, not instants: ``fromDate`` is
the first day (sent back as that day's 00:00 UTC), ``toDate`` the end of the last day
(sent back as the next day's 00:00 UTC, exclusive as the RFC has it). There is no HTML
body: ``htmlBody`` is null and setting one is ``invalidProperties``. Its state is the
account's (a change is a ``vacation`` row of the change log).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import Field

from mailroom.registry import Context
from mailroom.services.jmap._accounts import account_of, check_if_in_state, state
from mailroom.services.jmap._api import VACATION, method
from mailroom.services.jmap._get import check_ids, check_properties, get_response
from mailroom.services.jmap._set import (
    CreateMap,
    DestroyList,
    UpdateMap,
    check_set_size,
    flatten_patch,
    set_error,
    set_response,
)
from mailroom.services.jmap._types import GetResponse, IdOrRef, JmapId, PropertyName, SetResponse, State
from mailroom.store import jmap as jmap_store

SINGLETON = "singleton"
PROPERTIES = ("id", "isEnabled", "fromDate", "toDate", "subject", "textBody", "htmlBody")
MAX_SUBJECT = 255
MAX_BODY = 100_000


def _utc(day: date) -> str:
    return datetime.combine(day, time(0), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _object(reply: jmap_store.AutoReply) -> dict[str, Any]:
    return {
        "id": SINGLETON,
        "isEnabled": reply.enabled,
        "fromDate": _utc(reply.start) if reply.start else None,
        "toDate": _utc(reply.end + timedelta(days=1)) if reply.end else None,
        "subject": reply.subject or None,
        "textBody": reply.body or None,
        "htmlBody": None,
    }


def _instant(key: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(key)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(key) from None
    if parsed.tzinfo is None or not value.endswith("Z"):
        raise ValueError(key)  # RFC 8620 UTCDate: always "Z"
    return parsed.astimezone(UTC)


def _apply(reply: jmap_store.AutoReply, patch: dict[str, Any]) -> jmap_store.AutoReply | dict[str, Any]:
    """The auto-reply with the patch applied, or the SetError."""
    enabled, subject, body, start, end = reply.enabled, reply.subject, reply.body, reply.start, reply.end
    for key, value in patch.items():
        try:
            if key == "isEnabled":
                if not isinstance(value, bool):
                    raise ValueError(key)
                enabled = value
            elif key == "fromDate":
                start = None if value is None else _instant(key, value).date()
            elif key == "toDate":
                # Exclusive end instant → the last day it still covers.
                end = None if value is None else (_instant(key, value) - timedelta(microseconds=1)).date()
            elif key == "subject":
                if value is not None and (not isinstance(value, str) or len(value) > MAX_SUBJECT):
                    raise ValueError(key)
                subject = value or ""
            elif key == "textBody":
                if value is not None and (not isinstance(value, str) or len(value) > MAX_BODY):
                    raise ValueError(key)
                body = value or ""
            elif key == "htmlBody":
                if value is not None:
                    return set_error("invalidProperties", "no HTML auto-reply: use textBody", [key])
            elif key == "id":
                if value != SINGLETON:
                    raise ValueError(key)
            else:
                return set_error("invalidProperties", f"unknown property {key}", [key])
        except ValueError:
            return set_error("invalidProperties", f"{key} is not valid", [key])
    if start is not None and end is not None and end < start:
        return set_error("invalidProperties", "toDate is before fromDate", ["fromDate", "toDate"])
    return jmap_store.AutoReply(enabled, subject, body, start, end)


@method("VacationResponse/get", capability=VACATION)
async def vacation_get(
    ctx: Context,
    accountId: JmapId,
    ids: Annotated[list[IdOrRef], Field(max_length=1000)] | None = None,
    properties: Annotated[list[PropertyName], Field(max_length=100)] | None = None,
) -> GetResponse:
    """The auto-reply (``singleton``)."""
    user_id = account_of(ctx, accountId)
    wanted = check_ids(ctx, ids)
    props = check_properties(properties, PROPERTIES)
    async with ctx.rt.db.read() as tx:
        current = await state(tx, user_id)
        reply = await jmap_store.auto_reply(tx, user_id)
    assert reply is not None  # the account is the caller's
    return get_response(accountId, current, {SINGLETON: reply}, _object, wanted, props)


@method("VacationResponse/set", capability=VACATION)
async def vacation_set(
    ctx: Context,
    accountId: JmapId,
    ifInState: State | None = None,
    create: CreateMap | None = None,
    update: UpdateMap | None = None,
    destroy: DestroyList | None = None,
) -> SetResponse:
    """Change the auto-reply; it cannot be created or destroyed (``singleton``)."""
    user_id = account_of(ctx, accountId)
    check_set_size(ctx, create, update, destroy)
    async with ctx.rt.db.read() as tx:
        old_state = await check_if_in_state(tx, user_id, ifInState)
    not_created = {cid: set_error("singleton", "there is one VacationResponse") for cid in create or {}}
    not_destroyed = {i: set_error("singleton", "there is one VacationResponse") for i in destroy or []}
    updated: dict[str, dict[str, Any] | None] = {}
    not_updated: dict[str, dict[str, Any]] = {}
    for given, patch in (update or {}).items():
        if given != SINGLETON:
            not_updated[given] = set_error("notFound", f"no VacationResponse {given}")
            continue
        async with ctx.rt.db.write() as tx:
            reply = await jmap_store.auto_reply(tx, user_id)
            assert reply is not None
            changed = _apply(reply, flatten_patch(patch))
            if isinstance(changed, dict):
                not_updated[given] = changed
                continue
            if changed != reply:
                await jmap_store.set_auto_reply(tx, user_id, changed, ctx.rt.clock.now())
        updated[given] = None
    async with ctx.rt.db.read() as tx:
        new_state = await state(tx, user_id)
    return set_response(
        accountId,
        old_state,
        new_state,
        updated=updated,
        not_created=not_created,
        not_updated=not_updated,
        not_destroyed=not_destroyed,
    )
