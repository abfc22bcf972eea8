"""Which thread a new email joins, per mailbox.

Rules, in order:

1. **References.** The email's own Message-ID, its In-Reply-To and its References are looked
   up in the mailbox's message-id map (``thread_message_ids``). Every thread found is the
   same conversation: the email joins the oldest of them and the others are merged into it.
   The map holds referenced ids too, not only ids of stored mail, so a reply that arrived
   before its parent left a *pending join*: when the parent arrives its own Message-ID is
   found, and a second branch that also hangs off the parent is merged in then.
2. **Subject fallback**, only for an email without In-Reply-To and References (its mailer
   dropped them) whose subject is a reply (``Re:``, ``AW:``, ...): it joins the newest thread
   with the same normalised subject whose last activity is within the window (default 7
   days), as JMAP servers do; an old subject never captures new mail.
3. Otherwise a new thread.

Finally every id the email carries is recorded for its thread (ids already known keep theirs).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mailroom.delivery.subjects import is_reply_subject, normalize_subject
from mailroom.store import threads as store
from mailroom.store.engine import Tx


def thread_keys(
    message_id: str | None, in_reply_to: list[str], references: list[str]
) -> tuple[list[str], list[str]]:
    """(every id to look up and record, the referenced ones alone), without duplicates."""
    referenced = list(dict.fromkeys([*references, *in_reply_to]))
    own = [message_id] if message_id else []
    keys = list(dict.fromkeys([*own, *referenced]))
    return keys, [k for k in referenced if k != message_id]


async def assign_thread(
    tx: Tx,
    user_id: int,
    *,
    message_id: str | None,
    in_reply_to: list[str],
    references: list[str],
    subject: str,
    received_at: datetime,
    window: timedelta,
) -> tuple[int, bool]:
    """The id of the thread the email joins (created or merged as needed), and whether it
    was created for it (then it is empty yet: the caller's email is its first)."""
    keys, referenced = thread_keys(message_id, in_reply_to, references)
    found = await store.thread_ids_for(tx, user_id, keys) if keys else {}
    candidates = sorted(set(found.values()))
    normalized = normalize_subject(subject)
    thread_id: int | None = None
    if candidates:
        thread_id = candidates[0]
        if len(candidates) > 1:
            await store.merge(tx, thread_id, candidates[1:])
    elif not referenced and normalized and is_reply_subject(subject):
        thread_id = await store.recent_by_subject(tx, user_id, normalized, received_at - window)
    created = thread_id is None
    if thread_id is None:
        thread_id = await store.create(tx, user_id, subject, normalized, received_at)
    # Ids found already point at thread_id (directly or through the merge).
    await store.register_ids(tx, user_id, [k for k in keys if k not in found], thread_id)
    return thread_id, created
