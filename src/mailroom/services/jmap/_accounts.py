"""Accounts, ids and states as JMAP spells them.

- An account is a mailbox (ids in ``_ids.py``); a caller sees exactly one, their own (API
  keys act as their owner). Any other id is ``accountNotFound``.
- Every type's state is the account's modseq (store/changelog.py), as a string.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mailroom.errors import BadRequest
from mailroom.registry import Context
from mailroom.services.jmap._errors import AccountNotFound, MethodError
from mailroom.services.jmap._ids import (
    ACCOUNT_PREFIX,
    EMAIL_PREFIX,
    IDENTITY_PREFIX,
    MAILBOX_PREFIX,
    THREAD_PREFIX,
    account_id,
    decode,
    encode,
)
from mailroom.services.jmap._types import ChangesResponse, QueryChangesResponse
from mailroom.store import changelog, jmap_emails, jmap_states
from mailroom.store import jmap as jmap_store
from mailroom.store.engine import Tx


def account_of(ctx: Context, given: str) -> int:
    """The user id behind ``accountId``, if it is the caller's; else ``accountNotFound``."""
    user_id = ctx.principal.user_id
    if user_id is None or given != account_id(user_id):
        raise AccountNotFound(given)
    return user_id


async def state(tx: Tx, user_id: int) -> str:
    """The account's state string (one for every type)."""
    return str((await changelog.state(tx, user_id)).modseq)


def parse_state(value: str) -> int | None:
    """A state string back to its modseq; None for a string we never handed out."""
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    return int(value)


def check_state(current: str, if_in_state: str | None) -> str:
    """``current``, or ``stateMismatch`` if the client named another state (RFC 8620 §5.3);
    for types whose state is not the account's modseq (a digest)."""
    if if_in_state is not None and if_in_state != current:
        raise MethodError("stateMismatch", f"the state is {current}, not {if_in_state}")
    return current


_Changes = TypeVar("_Changes", bound=ChangesResponse)


def changes_response(
    account: str,
    since_state: str,
    found: changelog.Changes,
    id_of: Callable[[int], str],
    response: type[_Changes] = ChangesResponse,  # type: ignore[assignment]
) -> _Changes:
    """The /changes answer for ``found`` (from ``changes_since``), ids spelled by ``id_of``."""
    return response(
        accountId=account,
        oldState=since_state,
        newState=str(found.new_state),
        hasMoreChanges=found.has_more_changes,
        created=[id_of(i) for i in found.created],
        updated=[id_of(i) for i in found.updated],
        destroyed=[id_of(i) for i in found.destroyed],
    )


def unchanged_since(account: str, since_state: str, current: str, why: str) -> ChangesResponse:
    """A /changes answer for a type whose state is a digest (no change log): no changes when
    ``since_state`` is ``current``, else ``cannotCalculateChanges`` saying ``why``."""
    if since_state != current:
        raise MethodError("cannotCalculateChanges", why)
    return ChangesResponse(
        accountId=account, oldState=since_state, newState=current, hasMoreChanges=False,
        created=[], updated=[], destroyed=[],
    )  # fmt: skip


def query_unchanged_since(
    account: str, since_query_state: str, current: str, why: str, total: int | None = None
) -> QueryChangesResponse:
    """A /queryChanges answer when results are not kept: nothing removed or added when
    ``since_query_state`` is ``current``, else ``cannotCalculateChanges`` saying ``why``."""
    if since_query_state != current:
        raise MethodError("cannotCalculateChanges", why)
    return QueryChangesResponse(
        accountId=account, oldQueryState=since_query_state, newQueryState=current, total=total,
        removed=[], added=[],
    )  # fmt: skip


async def check_if_in_state(tx: Tx, user_id: int, if_in_state: str | None) -> str:
    """The current state, or ``stateMismatch`` if the client named another one (RFC 8620 §5.3)."""
    return check_state(await state(tx, user_id), if_in_state)


async def changes_since(
    tx: Tx, user_id: int, kind: changelog.Kind, since_state: str, max_changes: int | None, default_max: int
) -> changelog.Changes:
    """The change log read for a /changes method; a state never handed out (or from before
    the log) is ``cannotCalculateChanges``."""
    since = parse_state(since_state)
    if since is None:
        raise MethodError("cannotCalculateChanges", f"{since_state} is not a state of this account")
    if max_changes is not None and max_changes < 1:
        raise MethodError("invalidArguments", "maxChanges must be a positive integer")
    limit = min(max_changes or default_max, default_max)
    try:
        found = await changelog.changes(
            tx,
            user_id,
            changelog.ChangesQuery(kind=kind, since=since, max_changes=limit, hidden_as_destroyed=True),
        )
    except BadRequest:  # newer than the account's state (the limit is at least 1)
        raise MethodError("cannotCalculateChanges", f"{since_state} is not a state of this account") from None
    return await _without_hidden(tx, user_id, found)


_Loaded = TypeVar("_Loaded")


async def observed(
    ctx: Context,
    user_id: int,
    kind: str,
    load: Callable[[Tx], Awaitable[tuple[_Loaded, dict[str, str]]]],
) -> tuple[_Loaded, str]:
    """What ``load`` reads (and the ``{id: digest}`` of the objects in it) with the type's
    state, for a type outside the mail change log (store/jmap_states.py). A read
    transaction when nothing changed since last seen; else it is read again and observed
    in a write transaction, which takes the next state."""
    async with ctx.rt.db.read() as tx:
        loaded, digests = await load(tx)
        found = await jmap_states.unchanged(tx, user_id, kind, digests)
    if found is None:
        async with ctx.rt.db.write() as tx:
            loaded, digests = await load(tx)
            found = await jmap_states.observe(tx, user_id, kind, digests)
    return loaded, str(found)


async def _without_hidden(tx: Tx, user_id: int, found: changelog.Changes) -> changelog.Changes:
    """RFC 8621 §4.1.1: an email hidden now (``$deleted``) is destroyed for JMAP (never
    created), and so is a thread left with no visible email. The log says so for emails
    hidden since migration 0022_jmap3; this also covers the older ones, and threads."""
    if found.kind not in (changelog.Kind.EMAIL, changelog.Kind.THREAD):
        return found
    alive = [*found.created, *found.updated]
    if not alive:
        return found
    if found.kind == changelog.Kind.EMAIL:
        hidden = await jmap_emails.hidden_among(tx, user_id, alive)
    else:
        hidden = await jmap_store.threads_without_visible_email(tx, alive)
        # A thread hidden at sinceState that an email joined since (the log says updated):
        # the client could not know it, so it is created. Candidates: threads holding a
        # hidden email now (few; none for most accounts).
        updated = [i for i in found.updated if i not in hidden]
        held = await jmap_store.threads_with_hidden_email(tx, user_id, updated)
        unknown = await changelog.hidden_at(tx, user_id, held, found.old_state) if held else set()
        if unknown:
            found = dataclasses.replace(
                found,
                created=(*found.created, *(i for i in found.updated if i in unknown)),
                updated=tuple(i for i in found.updated if i not in unknown),
            )
    if not hidden:
        return found
    return dataclasses.replace(
        found,
        created=tuple(i for i in found.created if i not in hidden),
        updated=tuple(i for i in found.updated if i not in hidden),
        destroyed=(*found.destroyed, *(i for i in found.updated if i in hidden)),
    )


async def type_changes(
    ctx: Context,
    user_id: int,
    account: str,
    kind: str,
    since_state: str,
    max_changes: int | None,
    default_max: int,
    id_of: Callable[[str], str] = str,
) -> ChangesResponse:
    """A /changes answer for a type outside the mail change log (store/jmap_states.py;
    the caller observed the objects first). A state never handed out, such as the digests
    earlier versions gave, is ``cannotCalculateChanges``."""
    since = parse_state(since_state)
    async with ctx.rt.db.read() as tx:
        limit = min(max_changes or default_max, default_max)
        found = await jmap_states.changes(tx, user_id, kind, since, limit) if since is not None else None
    if found is None:
        raise MethodError("cannotCalculateChanges", f"{since_state} is not a {kind} state of this account")
    return ChangesResponse(
        accountId=account,
        oldState=since_state,
        newState=str(found.new_state),
        hasMoreChanges=found.has_more,
        created=[id_of(i) for i in found.created],
        updated=[id_of(i) for i in found.updated],
        destroyed=[id_of(i) for i in found.destroyed],
    )


__all__ = [
    "ACCOUNT_PREFIX",
    "EMAIL_PREFIX",
    "IDENTITY_PREFIX",
    "MAILBOX_PREFIX",
    "THREAD_PREFIX",
    "account_id",
    "account_of",
    "changes_response",
    "changes_since",
    "check_if_in_state",
    "check_state",
    "decode",
    "encode",
    "observed",
    "parse_state",
    "query_unchanged_since",
    "state",
    "type_changes",
    "unchanged_since",
]
