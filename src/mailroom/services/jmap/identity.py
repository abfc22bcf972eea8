"""``Identity/get|changes|set`` (RFC 8621 §6): the addresses the user may send as.

The identities are the user's own address (``mayDelete`` false) and the send-as identities
managers grant (``admin.identities``). A user may change an identity's ``name`` (the
display name); creating and destroying identities is a manager's act, so ``Identity/set``
refuses those with ``forbidden``. ``replyTo``, ``bcc`` and the signatures are not kept
(always null / empty). Identities are not in the change log: their state is a digest of
them, and ``Identity/changes`` from any other state is ``cannotCalculateChanges`` (the
client fetches them again: there are few).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from pydantic import Field

from mailroom.registry import Context
from mailroom.services.jmap._accounts import account_of, check_state, unchanged_since
from mailroom.services.jmap._api import SUBMISSION, method
from mailroom.services.jmap._errors import MethodError
from mailroom.services.jmap._get import check_ids, check_properties, get_response
from mailroom.services.jmap._request import resolve
from mailroom.services.jmap._set import (
    CreateMap,
    DestroyList,
    UpdateMap,
    check_set_size,
    flatten_patch,
    set_error,
    set_response,
)
from mailroom.services.jmap._types import (
    ChangesResponse,
    GetResponse,
    IdOrRef,
    JmapId,
    PropertyName,
    SetResponse,
    State,
    UnsignedInt,
)
from mailroom.store import jmap as jmap_store
from mailroom.store.engine import Tx

PROPERTIES = ("id", "name", "email", "replyTo", "bcc", "textSignature", "htmlSignature", "mayDelete")
MAX_NAME = 200


def identity_id(address: str) -> str:
    """Stable per address: the same address is the same identity."""
    return "I" + hashlib.sha256(address.lower().encode()).hexdigest()[:24]


def _object(s: jmap_store.SendAs) -> dict[str, Any]:
    return {
        "id": identity_id(s.address),
        "name": s.display_name,
        "email": s.address,
        "replyTo": None,
        "bcc": None,
        "textSignature": "",
        "htmlSignature": "",
        "mayDelete": False,
    }


async def _identities(tx: Tx, user_id: int) -> tuple[list[jmap_store.SendAs], str]:
    found = await jmap_store.send_as_addresses(tx, user_id)
    digest = hashlib.sha256("\n".join(f"{s.address}\t{s.display_name}" for s in found).encode())
    return found, "i" + digest.hexdigest()[:16]


@method("Identity/get", capability=SUBMISSION)
async def identity_get(
    ctx: Context,
    accountId: JmapId,
    ids: Annotated[list[IdOrRef], Field(max_length=100_000)] | None = None,
    properties: Annotated[list[PropertyName], Field(max_length=100)] | None = None,
) -> GetResponse:
    """The addresses the user may send as."""
    user_id = account_of(ctx, accountId)
    wanted = check_ids(ctx, ids)
    props = check_properties(properties, PROPERTIES)
    async with ctx.rt.db.read() as tx:
        found, current = await _identities(tx, user_id)
    by_id = {identity_id(s.address): s for s in found}
    return get_response(accountId, current, by_id, _object, wanted, props)


@method("Identity/changes", capability=SUBMISSION)
async def identity_changes(
    ctx: Context, accountId: JmapId, sinceState: State, maxChanges: UnsignedInt | None = None
) -> ChangesResponse:
    """Nothing when ``sinceState`` is current; otherwise ``cannotCalculateChanges``."""
    user_id = account_of(ctx, accountId)
    if maxChanges is not None and maxChanges < 1:
        raise MethodError("invalidArguments", "maxChanges must be a positive integer")
    async with ctx.rt.db.read() as tx:
        _, current = await _identities(tx, user_id)
    return unchanged_since(
        accountId, sinceState, current, "identities changed: fetch them again with Identity/get"
    )


_DEFAULTS = {"replyTo": None, "bcc": None, "textSignature": "", "htmlSignature": "", "mayDelete": False}


@method("Identity/set", capability=SUBMISSION)
async def identity_set(
    ctx: Context,
    accountId: JmapId,
    ifInState: State | None = None,
    create: CreateMap | None = None,
    update: UpdateMap | None = None,
    destroy: DestroyList | None = None,
) -> SetResponse:
    """Rename identities; creating and destroying them is for managers (``forbidden``)."""
    user_id = account_of(ctx, accountId)
    check_set_size(ctx, create, update, destroy)
    async with ctx.rt.db.read() as tx:
        found, current = await _identities(tx, user_id)
    old_state = check_state(current, ifInState)
    by_id = {identity_id(s.address): s for s in found}
    not_created = {
        cid: set_error("forbidden", "identities are granted by a manager of the domain (admin.identities)")
        for cid in create or {}
    }
    updated: dict[str, dict[str, Any] | None] = {}
    not_updated: dict[str, dict[str, Any]] = {}
    for given, patch in (update or {}).items():
        target = resolve(ctx, given)
        s = by_id.get(target) if target is not None else None
        if s is None:
            not_updated[given] = set_error("notFound", f"no identity {given}")
            continue
        error = None
        name: str | None = None
        for key, value in flatten_patch(patch).items():
            if key == "name":
                if not isinstance(value, str) or len(value) > MAX_NAME:
                    error = set_error(
                        "invalidProperties", f"name is a string of at most {MAX_NAME}", ["name"]
                    )
                else:
                    name = value
            elif key in ("id", "email"):
                if value != _object(s)[key]:
                    error = set_error("invalidProperties", f"{key} cannot change", [key])
            elif key in _DEFAULTS:
                if value != _DEFAULTS[key]:
                    error = set_error("invalidProperties", f"{key} is not kept by this server", [key])
            else:
                error = set_error("invalidProperties", f"unknown property {key}", [key])
            if error:
                break
        if error:
            not_updated[given] = error
            continue
        if name is not None and name != s.display_name:
            async with ctx.rt.db.write() as tx:
                if s.own:
                    await jmap_store.rename_user(tx, user_id, name)
                else:
                    await jmap_store.rename_identity(tx, user_id, s.address, name)
        updated[given] = None
    not_destroyed = {
        given: set_error("forbidden", "identities are taken away by a manager of the domain")
        for given in destroy or []
    }
    async with ctx.rt.db.read() as tx:
        _, new_state = await _identities(tx, user_id)
    return set_response(
        accountId,
        old_state,
        new_state,
        updated=updated,
        not_created=not_created,
        not_updated=not_updated,
        not_destroyed=not_destroyed,
    )
