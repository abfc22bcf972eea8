"""The event broker: what happened in a mailbox, pushed to its owner's connected clients.

``publish(user_id, type, data) -> event id`` and ``subscribe(user_id, last_event_id=None)``
(an async iterator of :class:`Event`). Every broker keeps a bounded replay buffer per user
(``push_replay_events`` events, ``push_replay_minutes`` minutes), so a client that
reconnects with the id of the last event it saw gets what it missed meanwhile.

* :class:`MemoryBroker`: one process (the default, and the tests).
* :class:`RedisBroker` (``redis_url`` set): every worker publishes to one Redis pub/sub
  channel and hands what arrives to its own subscribers, so an event reaches a client
  whichever worker holds its connection; the replay buffer is a capped Redis stream per
  user, so replay works across workers too.

Event ids are ``<milliseconds>-<sequence>`` (Redis stream ids), increasing per user.
Access revocations (:class:`Revocation`, :meth:`Broker.revoke`) ride the same fan-out: they
cut the open connections (:class:`OpenSessions`) of a disabled user, a revoked app password,
a signed-out session, in every worker.

Publishing never fails the operation that publishes: the mail is already committed, and a
lost push only means a client learns of it on its next refresh.
"""

from __future__ import annotations

from mailroom.events._broker import (
    EVENT_TYPES,
    AccessRevoked,
    Broker,
    Event,
    SubscriberOverflow,
    Subscription,
    open_broker,
    publish_many_safely,
    publish_safely,
    revoke_safely,
)
from mailroom.events._memory import MemoryBroker
from mailroom.events._redis import RedisBroker
from mailroom.events._sessions import OpenSession, OpenSessions, Revocation

__all__ = [
    "EVENT_TYPES",
    "AccessRevoked",
    "Broker",
    "Event",
    "MemoryBroker",
    "OpenSession",
    "OpenSessions",
    "RedisBroker",
    "Revocation",
    "SubscriberOverflow",
    "Subscription",
    "open_broker",
    "publish_many_safely",
    "publish_safely",
    "revoke_safely",
]
