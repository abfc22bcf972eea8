"""Push events of the mail pipeline, published after the commit that stored the mail."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailroom.delivery._model import ParsedMessage
from mailroom.events import publish_many_safely, publish_safely
from mailroom.runtime import Runtime
from mailroom.store.outbound import QueuedMessage, QueuedRecipient

#: One recipient's outcome as the queue records it: (recipient row id, status, code, reply).
StatusUpdate = tuple[int, str, int | None, str]
#: Sources whose mail is announced: not bulk imports from the command line.
ANNOUNCED_SOURCES = frozenset({"smtp", "lmtp", "api", "submission"})


@dataclass(frozen=True, slots=True)
class StoredEmail:
    """A message stored in one mailbox (not a duplicate), as ingest knows it."""

    user_id: int
    email_id: int
    thread_id: int
    parsed: ParsedMessage
    source: str
    #: The mailbox's state (store/changelog.py) once this email was stored, read in the
    #: delivering transaction: push events carry it without another read.
    state: int | None = None


async def announce_received(rt: Runtime, stored: Iterable[StoredEmail]) -> None:
    """``email.received`` for each stored email, published together (the mail service adds
    the thread summaries, read at once for all of them)."""
    events: list[tuple[int, Mapping[str, Any]]] = []
    for item in stored:
        if item.source not in ANNOUNCED_SOURCES:
            continue
        parsed = item.parsed
        sender = parsed.from_[0].to_dict() if parsed.from_ else None
        data = {
            "email_id": item.email_id,
            "thread_id": item.thread_id,
            "subject": parsed.subject,
            "snippet": parsed.snippet,
            "from": sender,
            "has_attachments": parsed.has_attachments,
        }
        if item.state is not None:
            data["state"] = item.state
        events.append((item.user_id, data))
    await publish_many_safely(rt.events, "email.received", events)


async def announce_status(
    rt: Runtime,
    entry: QueuedMessage,
    waiting: Sequence[QueuedRecipient],
    updates: Sequence[StatusUpdate],
    states: Mapping[str, str] | None = None,
) -> None:
    """``email.status`` to the sender after a delivery attempt's outcomes are committed.

    ``updates`` are ``(recipient row id, status, code, reply)``; ``waiting`` the recipient rows.
    ``states``: JMAP states by type the change took (``EmailSubmission``), when known.
    """
    user_id = entry.user_id
    if user_id is None or not updates:
        return
    address_of = {r.id: r.address for r in waiting}
    await publish_safely(
        rt.events,
        user_id,
        "email.status",
        {
            "queue_id": entry.id,
            "email_id": entry.email_id,
            "message_id": entry.message_id,
            "subject": entry.subject or "",
            "recipients": [
                {"address": address_of.get(rid, ""), "status": status, "code": code, "reply": reply}
                for rid, status, code, reply in updates
            ],
            **({"states": dict(states)} if states else {}),
        },
    )
