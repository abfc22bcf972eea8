"""The in-process broker: one worker, or the tests."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

from mailroom.clock import Clock
from mailroom.events._broker import Broker, Event, id_key
from mailroom.settings import Settings


class MemoryBroker(Broker):
    """Events fan out to this process's subscribers; the replay buffer is a deque per user."""

    backend = "memory"

    def __init__(self, settings: Settings, clock: Clock) -> None:
        super().__init__(settings, clock)
        self._buffers: dict[int, deque[Event]] = {}
        self._last = (0, 0)

    def _next_id(self, when: datetime) -> str:
        ms = int(when.timestamp() * 1000)
        last_ms, seq = self._last
        self._last = (ms, 0) if ms > last_ms else (last_ms, seq + 1)
        return f"{self._last[0]}-{self._last[1]}"

    def _prune(self, user_id: int) -> deque[Event]:
        buffer = self._buffers.setdefault(user_id, deque(maxlen=self.replay_events))
        oldest = self.clock.now() - self.replay_window
        while buffer and buffer[0].time < oldest:
            buffer.popleft()
        return buffer

    async def _publish(self, user_id: int, type: str, data: dict[str, Any], when: datetime) -> str:
        event = Event(self._next_id(when), user_id, type, data, when)
        self._prune(user_id).append(event)
        self._dispatch(event)
        return event.id

    async def replay(self, user_id: int, after: str) -> list[Event]:
        after_key = id_key(after)
        buffer = self._prune(user_id)
        if not buffer:
            del self._buffers[user_id]
            return []
        return [e for e in buffer if id_key(e.id) > after_key]
