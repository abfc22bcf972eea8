"""Usage accounting: every call counted per (principal, key, API, method, outcome, minute).

The hot path only adds to a dictionary in memory; a background task writes the sums in one
batch every ``usage_flush_seconds`` (an upsert that adds, so several workers and hosts can
flush into the same minute). A failed flush keeps its counts for the next one; closing the
mailroom flushes what is left. Old minutes are pruned after ``usage_retention_days``.

Calls refused before the filters (unknown method, authentication, scope, validation,
access) are counted too, through the runner's rejection hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mailroom.accounting.counters import client_network
from mailroom.accounting.metrics import UNKNOWN, Metrics
from mailroom.auth.principal import Principal
from mailroom.clock import Clock
from mailroom.errors import MailroomError
from mailroom.registry import Call, CallInfo, Proceed, Registry
from mailroom.runtime import Runtime
from mailroom.settings import Settings
from mailroom.store import usage as store
from mailroom.store.engine import Database

log = logging.getLogger("mailroom.usage")

#: (minute start as epoch seconds, principal, user id, key id, api, method, outcome)
UsageKey = tuple[int, str, int | None, str, str, str, str]
#: A flush happens early when this many distinct keys wait.
MAX_PENDING = 20_000
PRUNE_EVERY_SECONDS = 3600.0


def principal_label(principal: Principal, network: str | None) -> str:
    """Who a usage row counts: an address, an owner-less key, a network, or the process."""
    if principal.email:
        return principal.email
    if principal.key_id:
        return f"key:{principal.key_id}"
    if principal.kind == "anonymous":
        return f"net:{network}" if network else "anonymous"
    return principal.kind


class UsageRecorder:
    """Adds calls up in memory; :meth:`flush` writes them."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        registry: Registry,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.registry = registry
        self.metrics = metrics
        self.pending: dict[UsageKey, list[float]] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self._wake = asyncio.Event()

    # -- recording ----------------------------------------------------------------------
    def record(
        self,
        api: str,
        method: str,
        principal: Principal,
        info: CallInfo,
        outcome: str,
        seconds: float,
    ) -> None:
        if self.metrics is not None:
            self.metrics.observe_call(api, method, info.protocol, outcome, seconds)
        network = (
            client_network(
                info.client_ip or principal.client_ip,
                self.settings.client_network_prefix_v4,
                self.settings.client_network_prefix_v6,
            )
            if principal.kind == "anonymous"
            else None
        )
        minute = int(self.clock.timestamp()) // 60 * 60
        key: UsageKey = (
            minute,
            principal_label(principal, network),
            principal.user_id,
            principal.key_id or "",
            api,
            method,
            outcome,
        )
        ms = seconds * 1000.0
        entry = self.pending.get(key)
        if entry is None:
            self.pending[key] = [1, ms, ms]
            if len(self.pending) >= MAX_PENDING:
                self._wake.set()
        else:
            entry[0] += 1
            entry[1] += ms
            if ms > entry[2]:
                entry[2] = ms

    async def filter(self, call: Call, proceed: Proceed) -> Any:
        """The outermost filter: times and counts every call that got past validation."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await proceed(call)
        except MailroomError as exc:
            outcome = exc.code
            raise
        except BaseException:
            outcome = "internal_error"
            raise
        finally:
            spec = call.spec
            self.record(
                spec.api, spec.name, call.principal, call.info, outcome, time.perf_counter() - started
            )

    def rejected(self, name: str, principal: Principal, info: CallInfo, exc: MailroomError) -> None:
        """The runner refused a call before the filters ran; count it all the same."""
        spec = self.registry.get(name)
        api, method = (spec.api, spec.name) if spec is not None else (UNKNOWN, UNKNOWN)
        self.record(api, method, principal, info, exc.code, 0.0)

    # -- writing ------------------------------------------------------------------------
    async def flush(self) -> int:
        """Write what is pending in one transaction; returns how many rows were written.

        The calls counted for Prometheus are handed over at the same pace."""
        if self.metrics is not None:
            self.metrics.drain()
        async with self._lock:
            if not self.pending:
                return 0
            batch, self.pending = self.pending, {}
            rows = [
                store.UsageCount(
                    minute=datetime.fromtimestamp(k[0], UTC),
                    principal=k[1][:320],
                    user_id=k[2],
                    key_id=k[3],
                    api=k[4][:64],
                    method=k[5][:200],
                    outcome=k[6][:64],
                    calls=int(v[0]),
                    duration_ms=v[1],
                    max_ms=v[2],
                )
                for k, v in batch.items()
            ]
            try:
                async with self.db.write() as tx:
                    await store.add(tx, rows)
            except Exception:
                log.warning("could not write %d usage rows; keeping them for the next flush", len(rows))
                self._merge_back(batch)
                raise
            if self.metrics is not None:
                self.metrics.usage_flushes.inc()
            return len(rows)

    def _merge_back(self, batch: dict[UsageKey, list[float]]) -> None:
        for key, (calls, total, peak) in batch.items():
            entry = self.pending.get(key)
            if entry is None:
                self.pending[key] = [calls, total, peak]
            else:
                entry[0] += calls
                entry[1] += total
                entry[2] = max(entry[2], peak)

    async def prune(self) -> int:
        cutoff = self.clock.now() - timedelta(days=self.settings.usage_retention_days)
        async with self.db.write() as tx:
            return await store.prune(tx, cutoff)

    # -- the background task ------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="mailroom-usage-flush")

    async def _run(self) -> None:
        interval = self.settings.usage_flush_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            self._wake.clear()
            try:
                await self.flush()
                if time.monotonic() - self._last_prune > PRUNE_EVERY_SECONDS:
                    self._last_prune = time.monotonic()
                    await self.prune()
            except Exception:  # logged by flush; the next round tries again
                log.debug("usage flush failed", exc_info=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            log.error("usage counts lost at shutdown: %d rows", len(self.pending))

    def size(self) -> int:
        return len(self.pending)


def recorder_of(runtime: Runtime) -> UsageRecorder | None:
    """The running mailroom's usage recorder (``None`` before accounting is installed)."""
    return runtime.accounting.usage if runtime.accounting is not None else None


Observer = Callable[[str, Principal, CallInfo, MailroomError], None]
