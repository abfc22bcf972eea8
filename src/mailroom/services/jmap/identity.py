"""``Identity/get|changes|set`` (RFC 8621 §6): the addresses the user may send as.

The identities are the user's own address (``mayDelete`` false) and the send-as identities
managers grant (``admin.identities``). A user may change an identity's ``name`` (the
display name), ``replyTo``, ``bcc``, ``textSignature`` and ``htmlSignature`` (kept per
address, store/jmap.py); creating and destroying identities is a manager's act, so
``Identity/set`` refuses those with ``forbidden``. Identities are not in the mail change
log: their states come from store/jmap_states.py (each read compares the identities with
those last seen, so a manager's grant or revoke takes the next state at the next read).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from pydantic import Field

from mailroom.registry import Context
from mailroom.services.jmap._accounts import account_of, check_state, observed, type_changes
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


KIND = "Identity"
MAX_CHANGES = 1000
MAX_SIGNATURE = 20_000
MAX_ADDRESSES = 100
_NONE = jmap_store.IdentityExtras()


def _object(s: jmap_store.SendAs, extras: jmap_store.IdentityExtras = _NONE) -> dict[str, Any]:
    return {
        "id": identity_id(s.address),
        "name": s.display_name,
        "email": s.address,
        "replyTo": list(extras.reply_to) if extras.reply_to is not None else None,
        "bcc": list(extras.bcc) if extras.bcc is not None else None,
        "textSignature": extras.text_signature,
        "htmlSignature": extras.html_signature,
        "mayDelete": False,
    }


Identities = dict[str, dict[str, Any]]


def _digest(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:32]


async def _observe(ctx: Context, user_id: int) -> tuple[dict[str, jmap_store.SendAs], Identities, str]:
    """The identities (by id: the record, the JMAP object) and their state, taking the next
    state if they changed since last seen (a read transaction when they did not)."""

    async def load(tx: Tx) -> tuple[tuple[list[jmap_store.SendAs], Identities], dict[str, str]]:
        found = await jmap_store.send_as_addresses(tx, user_id)
        extras = await jmap_store.identity_extras(tx, user_id)
        objects = {identity_id(s.address): _object(s, extras.get(s.address.lower(), _NONE)) for s in found}
        return (found, objects), {i: _digest(o) for i, o in objects.items()}

    (found, objects), state = await observed(ctx, user_id, KIND, load)
    return {identity_id(s.address): s for s in found}, objects, state


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
    _, objects, current = await _observe(ctx, user_id)
    return get_response(accountId, current, objects, lambda o: o, wanted, props)


@method("Identity/changes", capability=SUBMISSION)
async def identity_changes(
    ctx: Context, accountId: JmapId, sinceState: State, maxChanges: UnsignedInt | None = None
) -> ChangesResponse:
    """Identities granted, changed and taken away since ``sinceState``."""
    user_id = account_of(ctx, accountId)
    if maxChanges is not None and maxChanges < 1:
        raise MethodError("invalidArguments", "maxChanges must be a positive integer")
    await _observe(ctx, user_id)
    return await type_changes(ctx, user_id, accountId, KIND, sinceState, maxChanges, MAX_CHANGES)


def _addresses(value: Any, key: str) -> tuple[dict[str, str | None], ...] | None:
    """``replyTo``/``bcc``: null or a list of EmailAddress objects."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_ADDRESSES:
        raise ValueError(f"{key} is null or a list of at most {MAX_ADDRESSES} EmailAddress objects")
    out = []
    for item in value:
        if not isinstance(item, dict) or set(item) - {"name", "email"}:
            raise ValueError(f"{key} holds EmailAddress objects (name, email)")
        name, email = item.get("name"), item.get("email")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
            raise ValueError(f"a name in {key} is a string of at most {MAX_NAME}")
        if (
            not isinstance(email, str)
            or "@" not in email
            or len(email) > 320
            or any(c in email for c in " \r\n<>")
        ):
            raise ValueError(f"{key} needs an email address in each entry")
        out.append({"name": name, "email": email})
    return tuple(out)


def _signature(value: Any, key: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_SIGNATURE:
        raise ValueError(f"{key} is a string of at most {MAX_SIGNATURE} characters")
    return value


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
    by_id, objects, current = await _observe(ctx, user_id)
    old_state = check_state(current, ifInState)
    not_created = {
        cid: set_error("forbidden", "identities are granted by a manager of the domain (admin.identities)")
        for cid in create or {}
    }
    updated: dict[str, dict[str, Any] | None] = {}
    not_updated: dict[str, dict[str, Any]] = {}
    for given, patch in (update or {}).items():
        target = resolve(ctx, given)
        s = by_id.get(target) if target is not None else None
        if s is None or target is None:
            not_updated[given] = set_error("notFound", f"no identity {given}")
            continue
        new = dict(objects[target])
        error = None
        for key, value in flatten_patch(patch).items():
            try:
                if key == "name":
                    if not isinstance(value, str) or len(value) > MAX_NAME:
                        raise ValueError(f"name is a string of at most {MAX_NAME}")
                    new["name"] = value
                elif key in ("replyTo", "bcc"):
                    found = _addresses(value, key)
                    new[key] = list(found) if found is not None else None
                elif key in ("textSignature", "htmlSignature"):
                    new[key] = _signature(value, key)
                elif key in ("id", "email", "mayDelete"):
                    if value != objects[target][key]:
                        raise ValueError(f"{key} cannot change")
                else:
                    raise ValueError(f"unknown property {key}")
            except ValueError as exc:
                error = set_error("invalidProperties", str(exc), [key])
                break
        if error:
            not_updated[given] = error
            continue
        async with ctx.rt.db.write() as tx:
            if new["name"] != s.display_name:
                if s.own:
                    await jmap_store.rename_user(tx, user_id, new["name"])
                else:
                    await jmap_store.rename_identity(tx, user_id, s.address, new["name"])
            extras = jmap_store.IdentityExtras(
                reply_to=tuple(new["replyTo"]) if new["replyTo"] is not None else None,
                bcc=tuple(new["bcc"]) if new["bcc"] is not None else None,
                text_signature=new["textSignature"],
                html_signature=new["htmlSignature"],
            )
            await jmap_store.set_identity_extras(tx, user_id, s.address, extras)
        updated[given] = None
    not_destroyed = {
        given: set_error("forbidden", "identities are taken away by a manager of the domain")
        for given in destroy or []
    }
    _, _, new_state = await _observe(ctx, user_id)
    return set_response(
        accountId,
        old_state,
        new_state,
        updated=updated,
        not_created=not_created,
        not_updated=not_updated,
        not_destroyed=not_destroyed,
    )
