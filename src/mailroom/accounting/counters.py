"""Shared counters: the ``limits`` library's moving window, in process memory or in Redis.

Rate limits and the brute-force guard count with :class:`limits.aio.strategies.MovingWindowRateLimiter`
(a true sliding window: every hit is a timestamp, a call is allowed while fewer than *limit*
hits lie within the last *window* seconds). Where the timestamps live:

* :class:`ClockedMemoryStorage` (default): this process's memory, on the injected clock, so
  tests move time with a fake clock. ``limits``' own ``MemoryStorage`` reads ``time.time()``
  and cannot be given a clock; this class implements the same storage interface.
* ``limits``' ``RedisStorage`` (through redis-py) when ``redis_url`` is set, so every worker
  and host shares the counters. Redis runs its moving window as one Lua script per hit:
  concurrent hits from several workers never overshoot the limit.
"""

from __future__ import annotations

import bisect
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MovingWindowSupport, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from mailroom.clock import Clock, SystemClock
from mailroom.settings import Settings

log = logging.getLogger("mailroom.accounting")

#: Keys idle this long past their window are dropped by the periodic sweep.
_SWEEP_EVERY = 4096


class ClockedMemoryStorage(Storage, MovingWindowSupport):
    """``limits`` storage in process memory that reads time from an injected function.

    Moving windows are ascending lists of hit times, trimmed to the limit; plain counters
    (``incr``/``get``) have an expiry. An entry exactly ``expiry`` seconds old has left the
    window.
    """

    STORAGE_SCHEME = ["mailroom+memory"]

    def __init__(self, now: Callable[[], float], **options: Any) -> None:
        super().__init__(None, **options)
        self._now = now
        self._events: dict[str, list[float]] = {}
        self._counters: dict[str, tuple[int, float]] = {}
        self._expires: dict[str, float] = {}
        self._ops = 0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    # -- plain counters -----------------------------------------------------------------
    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = self._now()
        value, expires = self._counters.get(key, (0, 0.0))
        if expires <= now:
            value, expires = 0, now + expiry
        value += amount
        self._counters[key] = (value, expires)
        self._maybe_sweep(now)
        return value

    async def get(self, key: str) -> int:
        value, expires = self._counters.get(key, (0, 0.0))
        return value if expires > self._now() else 0

    async def get_expiry(self, key: str) -> float:
        now = self._now()
        _, expires = self._counters.get(key, (0, now))
        return max(expires, now)

    async def clear(self, key: str) -> None:
        self._counters.pop(key, None)
        self._events.pop(key, None)
        self._expires.pop(key, None)

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        count = len(self._counters) + len(self._events)
        self._counters.clear()
        self._events.clear()
        self._expires.clear()
        return count

    # -- moving windows -----------------------------------------------------------------
    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = self._now()
        events = self._events.setdefault(key, [])
        # The (limit - amount + 1)-th newest hit still in the window leaves no room.
        k = limit - amount + 1
        if len(events) >= k and events[len(events) - k] > now - expiry:
            return False
        events.extend([now] * amount)
        if len(events) > limit:
            del events[: len(events) - limit]
        self._expires[key] = now + expiry
        self._maybe_sweep(now)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = self._now()
        events = self._events.get(key)
        if not events:
            return now, 0
        first = bisect.bisect_right(events, now - expiry)
        count = len(events) - first
        return (events[first], count) if count else (now, 0)

    def _maybe_sweep(self, now: float) -> None:
        self._ops += 1
        if self._ops % _SWEEP_EVERY:
            return
        for key in [k for k, until in self._expires.items() if until <= now]:
            self._events.pop(key, None)
            self._expires.pop(key, None)
        for key in [k for k, (_, until) in self._counters.items() if until <= now]:
            self._counters.pop(key, None)

    def __len__(self) -> int:
        return len(self._events) + len(self._counters)


@dataclass
class Counters:
    """A ``limits`` storage, the moving-window limiter over it, and the time it counts in."""

    storage: Storage
    limiter: MovingWindowRateLimiter
    now: Callable[[], float]
    backend: str

    async def close(self) -> None:
        bridge = getattr(self.storage, "bridge", None)
        connection = getattr(bridge, "storage", None)
        closer = getattr(connection, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


def redis_storage_uri(url: str) -> str:
    """``redis://host:port/0`` → ``async+redis://host:port/0`` (the scheme ``limits`` wants)."""
    return url if url.startswith("async+") else "async+" + url


def open_counters(settings: Settings, clock: Clock) -> Counters:
    """Redis when ``redis_url`` is set (time from this host's clock), else process memory."""
    if settings.redis_url:
        from limits.aio.storage import RedisStorage

        storage: Storage = RedisStorage(
            redis_storage_uri(settings.redis_url),
            implementation="redispy",
            key_prefix=settings.redis_key_prefix,
        )
        return Counters(storage, MovingWindowRateLimiter(storage), time.time, "redis")

    if isinstance(clock, SystemClock):
        now: Callable[[], float] = time.time
    else:

        def now() -> float:
            return clock.now().timestamp()

    memory = ClockedMemoryStorage(now)
    return Counters(memory, MovingWindowRateLimiter(memory), now, "memory")


def parse_limit(text: str) -> RateLimitItem:
    """``100/minute`` → a ``limits`` item (the settings validated the text already)."""
    item: RateLimitItem = parse(text)
    return item


def client_network(ip: str | None, prefix_v4: int, prefix_v6: int) -> str | None:
    """The client's network (``203.0.113.0/24``, ``2001:db8:1::/48``): how anonymous callers
    and failed logins are counted, so one host cannot dodge a limit by changing its address
    within its own network."""
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = prefix_v4 if addr.version == 4 else prefix_v6
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))
