"""Rendered ``ENVELOPE`` items kept per worker, as Dovecot keeps them in its cache file.

A message's envelope never changes (an email's content is fixed for its id, and ids are
never reused: ``emails`` is AUTOINCREMENT on SQLite, a sequence on PostgreSQL), so once
rendered it is kept by email id for every session of this process: a client listing the
newest 50 again, or a second client on the same mailbox, is answered without reading or
parsing the stored structure. One cache per running :class:`~mailroom.bootstrap.Mailroom`
(by its database), bounded, oldest out first.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

#: ~300 bytes each: a few MB per worker at most.
MAX_ENVELOPES = 20_000

_CACHES: weakref.WeakKeyDictionary[object, OrderedDict[int, bytes]] = weakref.WeakKeyDictionary()


def cache_of(owner: object) -> OrderedDict[int, bytes]:
    found = _CACHES.get(owner)
    if found is None:
        found = _CACHES[owner] = OrderedDict()
    return found


def get(cache: OrderedDict[int, bytes], email_id: int) -> bytes | None:
    found = cache.get(email_id)
    if found is not None:
        cache.move_to_end(email_id)
    return found


def put(cache: OrderedDict[int, bytes], email_id: int, item: bytes) -> bytes:
    cache[email_id] = item
    if len(cache) > MAX_ENVELOPES:
        cache.popitem(last=False)
    return item
