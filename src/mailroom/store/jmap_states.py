"""States and changes of the JMAP types outside the account's mail change log.

Identities (granted by managers, renamed by the user) and EmailSubmissions (whose delivery
status the outbound queue changes) are not in ``store/changelog.py``. Their states come
from a counter per account and type and the objects last seen, each with a digest:
:func:`observe` compares what is there now with what was seen and, if anything differs,
takes the next state for all of it. Every read of such a type observes first, so a change
made anywhere takes a state at the first read after it, and ``/changes`` answers from any
state handed out (destroyed objects stay as tombstones). A read compares in a read
transaction (:func:`unchanged`) and writes only when something did change: the counter is
made at the first change, an account that never had any object is at state 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from mailroom.store.engine import Tx
from mailroom.store.jmap_schema import jmap_objects_seen as seen
from mailroom.store.jmap_schema import jmap_type_states as states
from mailroom.store.upsert import upsert


@dataclass(frozen=True, slots=True)
class TypeChanges:
    """A ``/changes`` answer: with ``has_more``, ``new_state`` is intermediate."""

    new_state: int
    has_more: bool
    created: tuple[str, ...]
    updated: tuple[str, ...]
    destroyed: tuple[str, ...]


async def current(tx: Tx, user_id: int, kind: str) -> int:
    """The type's state for the account (0 before anything was observed)."""
    value = await tx.scalar(select(states.c.state).where(states.c.user_id == user_id, states.c.kind == kind))
    return int(value or 0)


async def _seen(tx: Tx, user_id: int, kind: str) -> dict[str, tuple[str, bool]]:
    """What was last seen of ``kind``: ``{id: (digest, destroyed)}``."""
    rows = await tx.all(
        select(seen.c.object_id, seen.c.digest, seen.c.destroyed).where(
            seen.c.user_id == user_id, seen.c.kind == kind
        )
    )
    return {str(r["object_id"]): (str(r["digest"]), bool(r["destroyed"])) for r in rows}


def _differs(known: Mapping[str, tuple[str, bool]], objects: Mapping[str, str]) -> bool:
    if any(known.get(i) != (digest, False) for i, digest in objects.items()):
        return True  # made, changed or back again
    return any(not destroyed and i not in objects for i, (_, destroyed) in known.items())


async def unchanged(tx: Tx, user_id: int, kind: str, objects: Mapping[str, str]) -> int | None:
    """The state when ``objects`` are what was last seen (0 for an account that never had
    any), else None: then :func:`observe` them in a write transaction. A read: the usual
    case, nothing changed, takes no write lock."""
    if _differs(await _seen(tx, user_id, kind), objects):
        return None
    return await current(tx, user_id, kind)


async def observe(tx: Tx, user_id: int, kind: str, objects: Mapping[str, str]) -> int:
    """Record ``objects`` (``{id: digest}``: everything of ``kind`` the account has now) and
    return the state: the same as before when nothing changed, else the next one. Call it in
    a write transaction."""
    # Made if missing, and locked (a no-op update): concurrent observers take turns.
    key = {"user_id": user_id, "kind": kind}
    await upsert(tx, states, {**key, "state": 0}, ["user_id", "kind"], {"state": states.c.state})
    known = await _seen(tx, user_id, kind)
    created = [i for i in objects if i not in known]
    revived = [i for i in objects if i in known and known[i][1]]
    changed = [i for i in objects if i in known and not known[i][1] and known[i][0] != objects[i]]
    gone = [i for i, (_, destroyed) in known.items() if not destroyed and i not in objects]
    state = await current(tx, user_id, kind)
    if not (created or revived or changed or gone):
        return state
    state += 1
    await tx.execute(
        update(states).where(states.c.user_id == user_id, states.c.kind == kind).values(state=state)
    )
    if created:
        await tx.execute(
            insert(seen),
            [
                {
                    "user_id": user_id,
                    "kind": kind,
                    "object_id": i,
                    "digest": objects[i],
                    "created": state,
                    "changed": state,
                    "destroyed": False,
                }
                for i in created
            ],
        )
    where = (seen.c.user_id == user_id, seen.c.kind == kind)
    for i in revived:  # destroyed, then there again: created anew at this state
        await tx.execute(
            update(seen)
            .where(*where, seen.c.object_id == i)
            .values(digest=objects[i], created=state, changed=state, destroyed=False)
        )
    for i in changed:
        await tx.execute(
            update(seen).where(*where, seen.c.object_id == i).values(digest=objects[i], changed=state)
        )
    for i in gone:
        await tx.execute(
            update(seen).where(*where, seen.c.object_id == i).values(changed=state, destroyed=True)
        )
    return state


async def changes(tx: Tx, user_id: int, kind: str, since: int, max_changes: int) -> TypeChanges | None:
    """What changed after state ``since`` (None: a state never handed out). At most
    ``max_changes`` ids: whole states at a time, an intermediate state when cut; a single
    state with more changes than that is answered whole (the caller may refuse it)."""
    top = await current(tx, user_id, kind)
    if since > top or since < 0:
        return None
    rows = await tx.all(
        select(seen.c.object_id, seen.c.created, seen.c.changed, seen.c.destroyed)
        .where(seen.c.user_id == user_id, seen.c.kind == kind, seen.c.changed > since)
        .order_by(seen.c.changed, seen.c.object_id)
    )
    new_state = top
    if len(rows) > max_changes:
        cut = int(rows[max_changes]["changed"])  # the first state that does not fit
        if cut > int(rows[0]["changed"]):
            rows = [r for r in rows if int(r["changed"]) < cut]
            new_state = cut - 1
    created: list[str] = []
    updated: list[str] = []
    destroyed: list[str] = []
    for r in rows:
        new = int(r["created"]) > since
        if r["destroyed"]:
            if not new:
                destroyed.append(str(r["object_id"]))
        elif new:
            created.append(str(r["object_id"]))
        else:
            updated.append(str(r["object_id"]))
    return TypeChanges(new_state, new_state < top, tuple(created), tuple(updated), tuple(destroyed))
