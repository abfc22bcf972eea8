"""Wiring: build the accounting components of a starting mailroom and add their filters.

:func:`install` is called by :func:`mailroom.bootstrap.start`. The filters wrap each call in
this order, outermost first — the order is part of the behaviour:

1. **usage and metrics** — times and counts every call, including those the later filters
   refuse (a rate-limited call is counted with outcome ``rate_limited``);
2. **rate limits** — refuses over-limit calls before any work or storage happens;
3. **idempotency** — replays a repeated POST's stored response, refuses a concurrent one;
   a replay is not run again, so it is not audited again;
4. **audit** — innermost: records only changes that actually happened.

The brute-force guard is not a filter: credentials are checked before a call exists, so it
sits in the authenticator that every front-end uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailroom.accounting.audit import AuditLog
from mailroom.accounting.counters import Counters, open_counters
from mailroom.accounting.guard import LoginGuard
from mailroom.accounting.idempotency import Idempotency
from mailroom.accounting.metrics import Metrics
from mailroom.accounting.ratelimit import RateLimiter
from mailroom.accounting.usage import UsageRecorder

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

log = logging.getLogger("mailroom.accounting")

#: How often expired idempotency keys are deleted.
MAINTENANCE_SECONDS = 600.0


@dataclass
class Accounting:
    counters: Counters
    metrics: Metrics
    usage: UsageRecorder
    rate_limits: RateLimiter
    idempotency: Idempotency
    audit: AuditLog
    guard: LoginGuard
    _maintenance: asyncio.Task[None] | None = None

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(MAINTENANCE_SECONDS)
            try:
                await self.idempotency.prune()
            except Exception:
                log.warning("could not prune expired idempotency keys", exc_info=True)

    def start(self) -> None:
        self.usage.start()
        self._maintenance = asyncio.get_running_loop().create_task(
            self._maintain(), name="mailroom-accounting-maintenance"
        )

    async def close(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        await self.usage.close()
        await self.counters.close()


def install(app: Mailroom) -> Accounting:
    """Build the components, add the filters in the documented order, start the flusher."""
    settings, runtime = app.settings, app.runtime
    counters = open_counters(settings, runtime.clock)
    metrics = Metrics()
    usage = UsageRecorder(settings, runtime.db, runtime.clock, app.registry, metrics)
    metrics.register_queue("usage_pending", usage.size)
    accounting = Accounting(
        counters=counters,
        metrics=metrics,
        usage=usage,
        rate_limits=RateLimiter(settings, counters, runtime.db, metrics),
        idempotency=Idempotency(settings, runtime.db, runtime.clock),
        audit=AuditLog(runtime, app.registry, runtime.db, runtime.clock),
        guard=LoginGuard(
            counters,
            per_network=settings.login_failures_per_network,
            per_account=settings.login_failures_per_account,
            per_known_network=settings.login_failures_per_known_network,
            exemption_seconds=settings.login_exemption_seconds,
            secret=settings.secret_key.get_secret_value().encode(),
            prefix_v4=settings.client_network_prefix_v4,
            prefix_v6=settings.client_network_prefix_v6,
            metrics=metrics,
        ),
    )
    runner = app.runner
    runner.add_filter(accounting.usage.filter)  # 1. outermost
    runner.add_filter(accounting.rate_limits.filter)  # 2.
    runner.add_filter(accounting.idempotency.filter, when=Idempotency.may_apply)  # 3.
    runner.add_filter(accounting.audit.filter, when=AuditLog.applies)  # 4. innermost
    runner.rejection_observers.append(accounting.usage.rejected)
    app.authenticator.guard = accounting.guard
    runtime.accounting = accounting
    accounting.start()
    app.closers.append(accounting.close)
    return accounting
