"""The Redis broker: events reach every worker, and replay works whichever worker answers.

* Fan-out: each worker subscribes once to ``<prefix>:events`` and hands each message to its
  own subscribers of that user (an event crosses to every worker once, whoever listens).
* Replay: each event is also appended to the user's stream ``<prefix>:events:<user id>``,
  capped at ``push_replay_events`` entries and expiring ``push_replay_minutes`` after the
  last event; the stream's id is the event id. Appending comes before publishing, so an
  event a client receives live is already in the buffer it would replay from.

* Revocations: ``<prefix>:events:revoked`` carries :class:`Revocation` s (a disabled user,
  a revoked app password) to every worker, which cuts its own matching connections.

A lost connection to Redis is retried (with a growing pause) by the listener; events
published while it was down reach clients only through replay on their next reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mailroom.clock import Clock
from mailroom.events._broker import Broker, Event
from mailroom.events._sessions import Revocation
from mailroom.settings import Settings

log = logging.getLogger("mailroom.events")


class RedisBroker(Broker):
    backend = "redis"
    #: How long start-up waits for the channel subscription before giving up.
    START_TIMEOUT_SECONDS = 10.0

    def __init__(self, settings: Settings, clock: Clock) -> None:
        super().__init__(settings, clock)
        assert settings.redis_url
        self.redis: aioredis.Redis = aioredis.from_url(settings.redis_url)
        self.prefix = f"{settings.redis_key_prefix}:events"
        self.channel = self.prefix
        #: Access revocations (:class:`Revocation`), tagged with the sending broker's id so
        #: that the sender, which cut its own connections already, skips its own.
        self.revocations = f"{self.prefix}:revoked"
        self.origin = uuid.uuid4().hex
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def listening(self, user_id: int) -> bool:
        """Clients may listen on any worker or host: this broker cannot tell, so always."""
        return True

    def _stream(self, user_id: int) -> str:
        return f"{self.prefix}:{user_id}"

    async def _publish(self, user_id: int, type: str, data: dict[str, Any], when: datetime) -> str:
        body = orjson.dumps({"type": type, "data": data, "time": when.isoformat()})
        stream = self._stream(user_id)
        raw_id = await self.redis.xadd(stream, {"e": body}, maxlen=self.replay_events, approximate=False)
        event_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        event = Event(event_id, user_id, type, data, when)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.expire(stream, int(self.replay_window.total_seconds()) + 60)
            pipe.publish(self.channel, event.encode())
            await pipe.execute()
        return event_id

    async def replay(self, user_id: int, after: str) -> list[Event]:
        entries = await self.redis.xrange(self._stream(user_id), min=f"({after}", max="+")
        oldest = self.clock.now() - self.replay_window
        out: list[Event] = []
        for raw_id, fields in entries or []:
            if not fields or b"e" not in fields:
                continue
            value = orjson.loads(fields[b"e"])
            when = datetime.fromisoformat(value["time"])
            if when < oldest:
                continue
            event_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            out.append(Event(event_id, user_id, str(value["type"]), dict(value["data"]), when))
        return out

    async def start(self) -> None:
        """Start listening; returns once the channel subscription is in place."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="mailroom-events-redis")
            try:
                await asyncio.wait_for(self._subscribed.wait(), self.START_TIMEOUT_SECONDS)
            except BaseException:
                await self.close()  # no listener left retrying behind a failed start
                raise

    async def _listen(self) -> None:
        pause = 0.1
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel, self.revocations)
                self._subscribed.set()
                pause = 0.1
                while True:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is None or message.get("type") != "message":
                        continue
                    channel = message.get("channel")
                    if channel in (self.revocations, self.revocations.encode()):
                        self._revoked(message["data"])
                        continue
                    try:
                        event = Event.decode(message["data"])
                    except (ValueError, KeyError, TypeError):
                        log.warning("ignoring a malformed event on %s", self.channel)
                        continue
                    self._dispatch(event)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("event listener lost Redis (%s); retrying in %.1f s", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _broadcast_revocation(self, revocation: Revocation) -> None:
        body = orjson.dumps({"origin": self.origin, "revocation": revocation.encode()})
        await self.redis.publish(self.revocations, body)

    def _revoked(self, raw: bytes | str) -> None:
        try:
            value = orjson.loads(raw)
            if value.get("origin") == self.origin:
                return
            revocation = Revocation.decode(value["revocation"])
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignoring a malformed revocation on %s", self.revocations)
            return
        cut = self.sessions.revoke(revocation)
        if cut:
            log.info("cut %d connection(s) of user %s: %s", cut, revocation.user_id, revocation.reason)

    async def close(self) -> None:
        await super().close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self.redis.aclose()
