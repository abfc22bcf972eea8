"""Whole-mailbox views kept per worker, as Dovecot keeps its index files.

A SELECT asks ``mail.imap.view`` for the whole mailbox: 10,000 messages are seven lists of
10,000 numbers through the registry, then the positions of the UIDs. A client reconnecting
to a mailbox nothing changed in (a desktop client's sync, every few minutes) gets the same
answer, so the last one is kept per (user, mailbox) with the (UIDVALIDITY, account MODSEQ)
it was read at; the next SELECT asks only "what changed since that MODSEQ" (an indexed read
that finds nothing) and, when nothing did, starts from the kept one. Whole-mailbox FETCH
answers rendered from it (``UID FETCH 1:* (FLAGS)``) are kept with it
(:meth:`~mailroom.frontends.imap._mailbox.Snapshot.render_fetch`).

One cache per running :class:`~mailroom.bootstrap.Mailroom` (by its database), bounded,
oldest out first. An entry is only ever used for the user it was read for, after a call as
that user confirmed its state.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

from mailroom.frontends.imap._mailbox import Snapshot

#: Mailboxes kept per worker (a 10,000-message one is ~1-2 MB with a rendered answer).
MAX_SNAPSHOTS = 16

_CACHES: weakref.WeakKeyDictionary[object, OrderedDict[tuple[int, int], Snapshot]] = (
    weakref.WeakKeyDictionary()
)


def cache_of(owner: object) -> OrderedDict[tuple[int, int], Snapshot]:
    found = _CACHES.get(owner)
    if found is None:
        found = _CACHES[owner] = OrderedDict()
    return found


def get(cache: OrderedDict[tuple[int, int], Snapshot], user_id: int, label_id: int) -> Snapshot | None:
    found = cache.get((user_id, label_id))
    if found is not None:
        cache.move_to_end((user_id, label_id))
    return found


def put(cache: OrderedDict[tuple[int, int], Snapshot], snapshot: Snapshot) -> Snapshot:
    key = (snapshot.user_id, snapshot.label_id)
    cache[key] = snapshot
    cache.move_to_end(key)
    while len(cache) > MAX_SNAPSHOTS:
        cache.popitem(last=False)
    return snapshot
