"""What the mail client API adds to push events: thread summaries and label counts.

The pipeline publishes ``email.received`` with what it knows (ids, subject, snippet,
sender); :func:`install` adds the thread summary a thread list shows, read after the commit,
so a client can update its list without another request. Batch actions and label changes publish
``thread.updated`` (the changed threads' summaries) and ``label.counts``. Every one of these
events carries the mailbox's ``state`` after the change (store/changelog.py), read after the
commit: a client asks ``mail.changes`` since the state it had.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from mailroom.events import publish_safely
from mailroom.runtime import Runtime
from mailroom.services.mail._mailbox import thread_summary
from mailroom.store import changelog
from mailroom.store import mailbox_queries as queries
from mailroom.store import recipients as mailbox_store
from mailroom.store.engine import Tx

log = logging.getLogger("mailroom.events")

#: Events of a change to the mailbox: each carries the mailbox's state after it.
STATE_EVENTS = ("email.received", "thread.updated", "label.counts")
#: ``thread.updated`` carries at most this many summaries; more ids are listed without them.
MAX_SUMMARIES = 50


async def _owner_email(tx: Tx, user_id: int) -> str | None:
    row = (await mailbox_store.mailboxes(tx, [user_id])).get(user_id)
    return row.email if row is not None else None


async def _summaries(tx: Tx, user_id: int, thread_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The summaries of those of ``thread_ids`` that still exist (two queries in all)."""
    me = await _owner_email(tx, user_id)
    rows = await queries.summaries_of(tx, user_id, list(dict.fromkeys(thread_ids)))
    names = await queries.label_names_of(tx, user_id, [r.id for r in rows])
    return [thread_summary(r, names[r.id], me).model_dump(mode="json") for r in rows]


async def label_counts(rt: Runtime, user_id: int) -> list[dict[str, Any]]:
    async with rt.db.read() as tx:
        rows = await queries.label_counts(tx, user_id)
    return [
        {
            "id": r.id,
            "name": r.name,
            "kind": r.kind,
            "threads_total": r.threads_total,
            "threads_unread": r.threads_unread,
            "emails_total": r.emails_total,
            "emails_unread": r.emails_unread,
        }
        for r in rows
    ]


def install(rt: Runtime) -> None:
    """Add the thread summary to ``email.received`` events of mailboxes a client listens to
    (the summary is read for clients: with nobody listening it is added on replay).

    Not the label counts (cheap to read now that they are kept on write, but not part of
    this event): the summary's labels and unread count let a client adjust its own.
    """

    async def enrich(events: list[tuple[int, dict[str, Any]]]) -> None:
        # A group commit's new mail together: the summaries of each mailbox's threads in
        # one read (three queries), not one read per message.
        # Only for listened mailboxes (the broker asks for none else); an event replayed to
        # a reconnecting client comes again, and one enriched already is left as it is.
        events = [(user_id, data) for user_id, data in events if "thread" not in data]
        wanted: dict[int, list[int]] = {}
        for user_id, data in events:
            thread_id = data.get("thread_id")
            if isinstance(thread_id, int):
                wanted.setdefault(user_id, []).append(thread_id)
        if not wanted:
            return
        found: dict[tuple[int, int], dict[str, Any]] = {}
        async with rt.db.read() as tx:
            for user_id, thread_ids in wanted.items():
                for summary in await _summaries(tx, user_id, thread_ids):
                    found[user_id, summary["thread_id"]] = summary
        for user_id, data in events:
            thread_id = data.get("thread_id")
            if isinstance(thread_id, int):
                data["thread"] = found.get((user_id, thread_id))

    rt.events.add_enricher("email.received", enrich, for_listeners=True)

    async def add_state(events: list[tuple[int, dict[str, Any]]]) -> None:
        # Ingest reads the state in its own transaction; for the others, read after the
        # commit: the state read here includes the change (or a later one).
        lacking = {user_id for user_id, data in events if "state" not in data}
        if not lacking:
            return
        async with rt.db.read() as tx:
            found = await changelog.states(tx, lacking)
        for user_id, data in events:
            if "state" not in data:
                data["state"] = found.get(user_id)

    for type in STATE_EVENTS:
        rt.events.add_enricher(type, add_state)

    async def add_summaries(events: list[tuple[int, dict[str, Any]]]) -> None:
        # thread.updated published bare (announce_flags): the summaries, for clients only.
        for user_id, data in events:
            if "threads" in data:
                continue
            ids = [i for i in data.get("thread_ids", ()) if isinstance(i, int)][:MAX_SUMMARIES]
            try:
                async with rt.db.read() as tx:
                    summaries = await _summaries(tx, user_id, ids)
            except Exception:  # the event still goes out, without them
                log.exception("thread summaries for user %s not added", user_id)
                continue
            present = {s["thread_id"] for s in summaries}
            data["threads"] = summaries
            data["deleted"] = [i for i in ids if i not in present]

    async def add_labels(events: list[tuple[int, dict[str, Any]]]) -> None:
        for user_id, data in events:
            if "labels" not in data:
                try:
                    data["labels"] = await label_counts(rt, user_id)
                except Exception:
                    log.exception("label counts for user %s not added", user_id)

    rt.events.add_enricher("thread.updated", add_summaries, for_listeners=True)
    rt.events.add_enricher("label.counts", add_labels, for_listeners=True)


async def announce_threads(rt: Runtime, user_id: int, thread_ids: Sequence[int], action: str) -> None:
    """After a batch action commits: ``thread.updated`` and ``label.counts``."""
    ids = list(dict.fromkeys(thread_ids))
    if not ids:
        return
    try:
        async with rt.db.read() as tx:
            summaries = await _summaries(tx, user_id, ids[:MAX_SUMMARIES])
    except Exception:  # the change is committed; only the push is lost
        log.exception("thread.updated for user %s not published", user_id)
        return
    present = {s["thread_id"] for s in summaries}
    deleted = [i for i in ids[:MAX_SUMMARIES] if i not in present]
    await publish_safely(
        rt.events,
        user_id,
        "thread.updated",
        {"action": action, "thread_ids": ids, "threads": summaries, "deleted": deleted},
    )
    await announce_labels(rt, user_id)


async def announce_flags(rt: Runtime, user_id: int, thread_ids: Sequence[int], action: str) -> None:
    """:func:`announce_threads` for flag changes, which an IMAP client makes many times a
    second (STORE, a FETCH that sets \\Seen): the same two events, but the summaries and
    label counts are read only for a mailbox a client listens to (and added on replay to
    one that reconnects), not after every change."""
    ids = list(dict.fromkeys(thread_ids))
    if not ids:
        return
    await publish_safely(rt.events, user_id, "thread.updated", {"action": action, "thread_ids": ids})
    await publish_safely(rt.events, user_id, "label.counts", {})


async def announce_labels(rt: Runtime, user_id: int) -> None:
    """``label.counts``: every label of the mailbox with its counts (as mail.labels.list)."""
    try:
        labels = await label_counts(rt, user_id)
    except Exception:
        log.exception("label.counts for user %s not published", user_id)
        return
    await publish_safely(rt.events, user_id, "label.counts", {"labels": labels})
