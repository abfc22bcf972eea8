"""Prometheus metrics: requests, latency, errors, rate-limit refusals, logins, queue sizes.

Each started mailroom has its own :class:`CollectorRegistry` (tests start many; the global
default registry would mix them). With several worker processes, set
``PROMETHEUS_MULTIPROC_DIR`` before starting them and ``/metrics`` adds every worker's
values up (prometheus-client's multiprocess mode); otherwise a scrape sees the worker that
answered it.

Label values are bounded: method names come from the registry (an unknown name is counted
as ``(unknown)``), outcomes are stable error codes.

Calls are counted in plain dictionaries and handed to prometheus-client in batches, when
``/metrics`` is read and with every usage flush (``usage_flush_seconds``): its per-value
locks and per-observation bucket scan cost more than a small API call's own work. In
multi-process mode the other workers' call counts therefore reach a scrape within one flush.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mailroom.runtime import Runtime

log = logging.getLogger("mailroom.metrics")

#: Seconds; API calls are mostly sub-millisecond to a few hundred milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNKNOWN = "(unknown)"


class _Queues:
    """A collector asking registered callables for their sizes at scrape time."""

    def __init__(self) -> None:
        self.sizes: dict[str, Callable[[], int]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "mailroom_queue_size", "Items waiting in an internal queue.", labels=["queue"]
        )
        for name, size in sorted(self.sizes.items()):
            try:
                family.add_metric([name], float(size()))
            except Exception:  # a failing queue must not break the scrape
                log.warning("queue %s could not tell its size", name, exc_info=True)
        yield family

    def describe(self) -> list[Any]:
        return []


class Metrics:
    """The counters and histograms the accounting filters and the login guard update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.requests = Counter(
            "mailroom_requests",
            "Registry calls, by method, protocol and outcome (ok or the error code).",
            ["api", "method", "protocol", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "mailroom_request_duration_seconds",
            "Time spent running registry calls (filters included).",
            ["api", "method", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "mailroom_request_errors",
            "Registry calls that failed, by error code.",
            ["api", "method", "code"],
            registry=r,
        )
        self.rate_limited = Counter(
            "mailroom_rate_limited",
            "Calls refused by a rate limit, by policy.",
            ["policy", "api"],
            registry=r,
        )
        self.login_failures = Counter(
            "mailroom_login_failures",
            "Failed password logins (repeats of one wrong password count once).",
            registry=r,
        )
        self.login_lockouts = Counter(
            "mailroom_login_lockouts",
            "Password logins refused because a network or an account is locked out.",
            ["scope"],
            registry=r,
        )
        self.usage_flushes = Counter(
            "mailroom_usage_flushes", "Batches of usage counts written to the database.", registry=r
        )
        self._queues = _Queues()
        r.register(self._queues)
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}
        #: The histogram's upper bounds, +Inf included: a call's bucket is found by bisection.
        self._bounds: tuple[float, ...] = (*LATENCY_BUCKETS, float("inf"))
        #: Calls not yet handed to prometheus-client: (api, method, protocol, outcome) →
        #: [count, seconds in all, count per latency bucket].
        self._pending: dict[tuple[str, str, str, str], list[Any]] = {}

    def register_queue(self, name: str, size: Callable[[], int]) -> None:
        """Report ``size()`` as ``mailroom_queue_size{queue=name}`` (outbound mail, usage buffer...)."""
        self._queues.sizes[name] = size

    def observe_call(self, api: str, method: str, protocol: str, outcome: str, seconds: float) -> None:
        """Count one call (handed to prometheus-client by the next :meth:`drain`)."""
        key = (api, method, protocol, outcome)
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = [0, 0.0, [0] * len(self._bounds)]
        entry[0] += 1
        entry[1] += seconds
        entry[2][bisect_left(self._bounds, seconds)] += 1

    def drain(self) -> None:
        """Add the calls counted since the last drain to the Prometheus metrics."""
        pending, self._pending = self._pending, {}
        for key, (count, seconds, buckets) in pending.items():
            api, method, protocol, outcome = key
            children = self._children.get(key)
            if children is None:
                children = (
                    self.requests.labels(api, method, protocol, outcome),
                    self.latency.labels(api, method, protocol),
                )
                self._children[key] = children
            children[0].inc(count)
            # A histogram takes one observation at a time; its sum and buckets are what
            # observe() adds to (tests/access/test_usage.py checks the two agree).
            histogram = children[1]
            histogram._sum.inc(seconds)
            for i, n in enumerate(buckets):
                if n:
                    histogram._buckets[i].inc(n)
            if outcome != "ok":
                self.errors.labels(api, method, outcome).inc(count)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        self.drain()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            registry.register(self._queues)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def metrics_of(runtime: Runtime) -> Metrics | None:
    """The running mailroom's metrics (``None`` before accounting is installed)."""
    return runtime.accounting.metrics if runtime.accounting is not None else None
