"""What every broker shares: events, subscriptions (bounded queues), local fan-out, replay."""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from mailroom.clock import Clock
from mailroom.events._sessions import OpenSession, OpenSessions, Revocation
from mailroom.settings import Settings

log = logging.getLogger("mailroom.events")

#: The event types mailroom publishes (docs/push.md describes their payloads).
EVENT_TYPES = frozenset({"email.received", "email.status", "thread.updated", "label.counts"})
#: ``<milliseconds>-<sequence>``, the form of Redis stream ids.
EVENT_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
#: How long a publish may take before it is given up (a stuck Redis must not stall delivery).
PUBLISH_TIMEOUT_SECONDS = 2.0

#: ``async ([(user_id, payload), ...]) -> None``: adds to events' payloads, in place, before
#: they are published; given every event of one publish at once, so that it can read what it
#: adds for all of them together (a group commit's worth of new mail: one read, not one each).
Enricher = Callable[[list[tuple[int, dict[str, Any]]]], Awaitable[None]]


def id_key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened in ``user_id``'s mailbox."""

    id: str
    user_id: int
    type: str
    data: dict[str, Any]
    time: datetime

    def wire(self) -> dict[str, Any]:
        """What a client receives (never the user id: a connection only ever has one user)."""
        return {"id": self.id, "type": self.type, "time": self.time.isoformat(), "data": self.data}

    def encode(self) -> bytes:
        return orjson.dumps({**self.wire(), "user_id": self.user_id})

    @classmethod
    def decode(cls, raw: bytes | str) -> Event:
        value = orjson.loads(raw)
        return cls(
            id=str(value["id"]),
            user_id=int(value["user_id"]),
            type=str(value["type"]),
            data=dict(value["data"]),
            time=datetime.fromisoformat(value["time"]),
        )


class SubscriberOverflow(Exception):
    """The client did not keep up: its queue filled and it was dropped (it may reconnect)."""


class AccessRevoked(StopAsyncIteration):
    """The subscriber's access ended (disabled, signed out, credential revoked): the stream
    ends (a ``StopAsyncIteration``, so code that only knows the end of a stream ends it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_END = None


class Subscription:
    """One connected client's events: the replayed ones first, then live ones as they come.

    Live events wait in a bounded queue. A client that lets it fill is dropped (the next
    read raises :class:`SubscriberOverflow`) rather than making the broker hold memory for
    it; it reconnects with its last event id and the replay buffer fills the gap.
    """

    def __init__(self, broker: Broker, user_id: int, queue_size: int) -> None:
        self.broker = broker
        self.user_id = user_id
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=queue_size + 1)
        self._limit = queue_size
        self._replay: list[Event] = []
        self._replayed: set[str] = set()
        self.overflowed = False
        self.closed = False
        #: Why the access ended, when it did (:meth:`revoke`).
        self.revoked: str | None = None
        #: The connection this subscription registered as (:class:`OpenSessions`), if any.
        self.session: OpenSession | None = None

    def _load_replay(self, events: list[Event]) -> None:
        self._replay = list(events)
        self._replayed = {e.id for e in events}

    def offer(self, event: Event) -> None:
        """Queue a live event (called by the broker; never blocks)."""
        if self.closed or self.overflowed or event.id in self._replayed:
            return
        if self._queue.qsize() >= self._limit:
            self.overflowed = True
            self.broker._detach(self)
            self._queue.put_nowait(_END)  # the one slot kept free for this
            return
        self._queue.put_nowait(event)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._replay:
            return self._replay.pop(0)
        while True:
            if self.closed:
                raise StopAsyncIteration
            item = await self._queue.get()
            if item is None:
                if self.revoked is not None:
                    raise AccessRevoked(self.revoked)
                if self.overflowed:
                    raise SubscriberOverflow(f"more than {self._limit} events waited for this client")
                raise StopAsyncIteration
            if item.id not in self._replayed:  # queued while the replay was read: given already
                return item

    def revoke(self, reason: str) -> None:
        """End the subscription because its access ended: the reader gets :class:`AccessRevoked`."""
        if self.closed or self.revoked is not None:
            return
        self.revoked = reason
        self.broker._detach(self)
        self._replay.clear()
        while not self._queue.empty():  # what waited is not for a client without access
            self._queue.get_nowait()
        self._queue.put_nowait(_END)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.broker._detach(self)
        self.broker.sessions.end(self.session)
        if not self._queue.full():
            self._queue.put_nowait(_END)


class Broker(ABC):
    """Publish and subscribe per user, with a bounded replay buffer per user."""

    backend = "abstract"

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.clock = clock
        self.replay_events = settings.push_replay_events
        self.replay_window = timedelta(minutes=settings.push_replay_minutes)
        self.queue_size = settings.push_queue_size
        self._local: dict[int, set[Subscription]] = {}
        #: The open connections of this process, cut by :meth:`revoke`.
        self.sessions = OpenSessions()
        self._enrichers: dict[str, list[Enricher]] = {}
        self._listener_enrichers: dict[str, list[Enricher]] = {}

    # -- publishing ---------------------------------------------------------------------

    def add_enricher(self, type: str, enricher: Enricher, *, for_listeners: bool = False) -> None:
        """Let a service add to ``type`` events' payloads (the thread summary, say).

        ``for_listeners``: what it adds is only for clients, so it reads nothing for a mailbox
        nobody listens to (:meth:`listening`): such an event is buffered without it, and the
        enricher adds it when the event is replayed to a client that reconnects. An enricher
        of this kind must leave a payload it already enriched as it is (it sees each replay).
        """
        enrichers = self._listener_enrichers if for_listeners else self._enrichers
        enrichers.setdefault(type, []).append(enricher)

    def listening(self, user_id: int) -> bool:
        """Whether a client may be listening to ``user_id``'s events now (anywhere): true
        unless the broker knows there is none. Here: any subscriber in this process."""
        return bool(self._local.get(user_id))

    async def _enrich_for_listeners(self, type: str, payloads: list[tuple[int, dict[str, Any]]]) -> None:
        if payloads:
            for enricher in self._listener_enrichers.get(type, ()):
                await enricher(payloads)

    async def publish(self, user_id: int, type: str, data: Mapping[str, Any]) -> str:
        """Record the event in ``user_id``'s replay buffer and send it to their clients."""
        [event_id] = await self.publish_many(type, [(user_id, data)])
        return event_id

    async def publish_many(self, type: str, items: Sequence[tuple[int, Mapping[str, Any]]]) -> list[str]:
        """:meth:`publish` for several events of one type (enriched together), in order."""
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}")
        payloads = [(user_id, dict(data)) for user_id, data in items]
        listened = [p for p in payloads if self.listening(p[0])]
        await self._enrich_for_listeners(type, listened)
        for enricher in self._enrichers.get(type, ()):
            await enricher(payloads)
        if len(listened) < len(payloads):  # a client that subscribed meanwhile gets them too
            late = [p for p in payloads if self.listening(p[0]) and not any(p is q for q in listened)]
            await self._enrich_for_listeners(type, late)
        now = self.clock.now()
        return [await self._publish(user_id, type, payload, now) for user_id, payload in payloads]

    @abstractmethod
    async def _publish(self, user_id: int, type: str, data: dict[str, Any], when: datetime) -> str: ...

    # -- subscribing --------------------------------------------------------------------

    async def subscribe(
        self,
        user_id: int,
        last_event_id: str | None = None,
        *,
        session: tuple[str, str, str] | None = None,
    ) -> Subscription:
        """``user_id``'s events from now on, after those since ``last_event_id`` (if given
        and still in the replay buffer; an id of another form is ignored).

        ``session``: ``(email, protocol, credential)`` of a client connection, registered in
        :attr:`sessions` so that :meth:`revoke` ends it (:class:`AccessRevoked`)."""
        sub = Subscription(self, user_id, self.queue_size)
        if session is not None:
            email, protocol, credential = session
            sub.session = self.sessions.open(user_id, email, protocol, credential, sub.revoke)
        # Attach before reading the replay buffer: an event published in between is then
        # both queued and replayed, and the subscription drops the queued copy.
        self._local.setdefault(user_id, set()).add(sub)
        if last_event_id is not None and EVENT_ID.match(last_event_id):
            try:
                replayed = await self.replay(user_id, last_event_id)
                try:
                    for type in {e.type for e in replayed}:
                        await self._enrich_for_listeners(
                            type, [(e.user_id, e.data) for e in replayed if e.type == type]
                        )
                except Exception:  # the events still go out, without what could not be added
                    log.exception("could not enrich the replay for user %s", user_id)
                sub._load_replay(replayed)
            except BaseException:
                await sub.aclose()
                raise
        return sub

    @abstractmethod
    async def replay(self, user_id: int, after: str) -> list[Event]:
        """The buffered events of ``user_id`` newer than ``after``, oldest first."""

    def subscribers(self, user_id: int) -> int:
        """How many clients of ``user_id`` this process holds."""
        return len(self._local.get(user_id, ()))

    def _dispatch(self, event: Event) -> None:
        for sub in list(self._local.get(event.user_id, ())):
            sub.offer(event)

    def _detach(self, sub: Subscription) -> None:
        subs = self._local.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._local[sub.user_id]

    # -- access revocations -------------------------------------------------------------

    async def revoke(self, revocation: Revocation) -> int:
        """Cut the connections ``revocation`` names, in this process at once and in every
        other one the broker reaches; how many this process cut."""
        cut = self.sessions.revoke(revocation)
        await self._broadcast_revocation(revocation)
        return cut

    async def _broadcast_revocation(self, revocation: Revocation) -> None:
        """Tell the other processes (none here: one process)."""
        return None

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for subs in list(self._local.values()):
            for sub in list(subs):
                await sub.aclose()


async def publish_safely(broker: Broker | None, user_id: int, type: str, data: Mapping[str, Any]) -> None:
    """Publish after a commit: a failure is logged, never raised (the change is stored; a
    client misses only the push and sees the change on its next refresh)."""
    await publish_many_safely(broker, type, [(user_id, data)])


async def publish_many_safely(
    broker: Broker | None, type: str, items: Sequence[tuple[int, Mapping[str, Any]]]
) -> None:
    """:func:`publish_safely` for several events of one type."""
    if broker is None or not items:
        return
    try:
        await asyncio.wait_for(broker.publish_many(type, items), PUBLISH_TIMEOUT_SECONDS)
    except Exception:
        users = sorted({user_id for user_id, _ in items})
        log.exception("could not publish %s for user(s) %s", type, users)


async def revoke_safely(broker: Broker | None, revocation: Revocation) -> None:
    """:meth:`Broker.revoke` after the commit that ended the access: a failure (Redis down)
    is logged, never raised; this process's connections are cut all the same."""
    if broker is None:
        return
    try:
        await asyncio.wait_for(broker.revoke(revocation), PUBLISH_TIMEOUT_SECONDS)
    except Exception:
        log.exception("could not send the revocation for user %s to the other workers", revocation.user_id)


def open_broker(settings: Settings, clock: Clock) -> Broker:
    """Redis when ``redis_url`` is set (several workers), process memory otherwise."""
    if settings.redis_url:
        from mailroom.events._redis import RedisBroker

        return RedisBroker(settings, clock)
    from mailroom.events._memory import MemoryBroker

    return MemoryBroker(settings, clock)
