"""Prometheus metrics: requests, latency, errors, rate-limit refusals, logins, queue sizes.

Each started mailroom has its own :class:`CollectorRegistry` (tests start many; the global
default registry would mix them). With several worker processes, set
``PROMETHEUS_MULTIPROC_DIR`` before starting them and ``/metrics`` adds every worker's
values up (prometheus-client's multiprocess mode); otherwise a scrape sees the worker that
answered it.

Label values are bounded: method names come from the registry (an unknown name is counted
as ``(unknown)``), outcomes are stable error codes.
"""

from __future__ import annotations

import logging
import os
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

    def register_queue(self, name: str, size: Callable[[], int]) -> None:
        """Report ``size()`` as ``mailroom_queue_size{queue=name}`` (outbound mail, usage buffer...)."""
        self._queues.sizes[name] = size

    def observe_call(self, api: str, method: str, protocol: str, outcome: str, seconds: float) -> None:
        key = (api, method, protocol, outcome)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(api, method, protocol, outcome),
                self.latency.labels(api, method, protocol),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if outcome != "ok":
            self.errors.labels(api, method, outcome).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            registry.register(self._queues)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def metrics_of(runtime: Runtime) -> Metrics | None:
    """The running mailroom's metrics (``None`` before accounting is installed)."""
    found = runtime.extras.get("metrics")
    return found if isinstance(found, Metrics) else None
