"""Usage accounting: counted in memory, flushed in batches, reported by period and dimension."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mailroom.accounting.usage import UsageRecorder
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.store.accounting_schema import usage_counts
from mailroom.web import build_app
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

MakeUser = Callable[..., Awaitable[Actor]]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"usage_flush_seconds": 3600, "metrics_token": "scrape-me"}


async def stored_rows(mailroom: Mailroom) -> int:
    async with mailroom.runtime.db.read() as tx:
        return int(await tx.scalar(select(func.count()).select_from(usage_counts)) or 0)


def recorder(mailroom: Mailroom) -> UsageRecorder:
    assert mailroom.runtime.accounting is not None
    found = mailroom.runtime.accounting.usage
    assert isinstance(found, UsageRecorder)
    return found


async def test_calls_are_counted_in_memory_then_flushed_in_one_batch(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser, mailroom: Mailroom, clock: FakeClock
) -> None:
    alice = await make_user("alice@one.test")
    await recorder(mailroom).flush()  # what the fixtures did
    async with mailroom.runtime.db.write() as tx:
        await tx.execute(usage_counts.delete())
    for _ in range(3):
        assert (await client.get("/api/v1/users/alice@one.test", headers=alice.headers)).status_code == 200
    assert (await client.get("/api/v1/users/bob@one.test", headers=alice.headers)).status_code == 404
    assert (
        await client.get("/api/v1/relays", headers=alice.headers)
    ).status_code == 403  # before the filters
    assert (await client.get("/health")).status_code == 200
    assert await stored_rows(mailroom) == 0  # nothing written per call
    clock.advance(3600)
    assert (await client.get("/health")).status_code == 200  # another hour
    written = await recorder(mailroom).flush()
    assert written == await stored_rows(mailroom) == 5

    r = await client.get(
        "/api/v1/usage",
        params={"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z",
                "group_by": "user,method,outcome", "granularity": "hour"},
        headers=admin.headers,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    report = r.json()
    rows = {(x["period"], x["user"], x["method"], x["outcome"]): x for x in report["rows"]}
    assert rows[("2026-01-01T12:00:00Z", "alice@one.test", "admin.users.get", "ok")]["calls"] == 3
    assert rows[("2026-01-01T12:00:00Z", "alice@one.test", "admin.users.get", "not_found")]["errors"] == 1
    assert rows[("2026-01-01T12:00:00Z", "alice@one.test", "admin.relays.list", "forbidden")]["calls"] == 1
    assert rows[("2026-01-01T12:00:00Z", "net:127.0.0.0/24", "system.health.get", "ok")]["calls"] == 1
    assert rows[("2026-01-01T13:00:00Z", "net:127.0.0.0/24", "system.health.get", "ok")]["calls"] == 1
    assert report["totals"]["calls"] == 7  # and the report call itself is not counted yet

    # A user sees only their own calls; the month view adds the hours up.
    r = await client.get(
        "/api/v1/usage", params={"from": "2026-01-01T00:00:00Z", "granularity": "month", "group_by": "user"},
        headers=alice.headers,
    )  # fmt: skip
    assert [(x["period"], x["user"], x["calls"], x["errors"]) for x in r.json()["rows"]] == [
        ("2026-01-01T00:00:00Z", "alice@one.test", 5, 2)
    ]


async def test_report_validation(client: httpx.AsyncClient, admin: Actor) -> None:
    backwards = {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    r = await client.get("/api/v1/usage", params=backwards, headers=admin.headers)
    assert r.status_code == 422
    r = await client.get("/api/v1/usage", params={"group_by": "colour"}, headers=admin.headers)
    assert r.status_code == 422
    assert (await client.get("/api/v1/usage")).status_code == 401


async def test_counts_survive_a_failed_flush(mailroom: Mailroom) -> None:
    rec = recorder(mailroom)
    await mailroom.registry.call("system.health.get")
    pending = dict(rec.pending)
    original = rec.db

    class Broken:
        def write(self) -> Any:
            raise RuntimeError("database down")

    rec.db = Broken()  # type: ignore[assignment]
    with pytest.raises(RuntimeError):
        await rec.flush()
    assert rec.pending == pending
    rec.db = original
    assert await rec.flush() == len(pending)


async def test_metrics_are_protected(client: httpx.AsyncClient, mailroom: Mailroom, admin: Actor) -> None:
    await client.get("/health")
    await client.get("/api/v1/relays", headers=admin.headers)
    r = await client.get("/metrics")  # the test client is 127.0.0.1: loopback may read
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert (
        'mailroom_requests_total{api="system",method="system.health.get",outcome="ok",protocol="rest"}'
        in text
    )
    assert "mailroom_request_duration_seconds_bucket" in text
    assert 'mailroom_queue_size{queue="usage_pending"}' in text
    transport = httpx.ASGITransport(app=build_app(mailroom), client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as remote:
        assert (await remote.get("/metrics")).status_code == 403
        assert (await remote.get("/metrics", headers={"Authorization": "Bearer nope"})).status_code == 403
        assert (
            await remote.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        ).status_code == 200


def test_batched_call_metrics_equal_one_observation_at_a_time() -> None:
    """Calls are counted in dictionaries and drained into prometheus-client in batches; the
    exposition must be what observing each call as it happened gives."""
    from prometheus_client import generate_latest

    from mailroom.accounting.metrics import LATENCY_BUCKETS, Metrics

    calls = [
        ("admin", "admin.users.get", "rest", "ok", 0.0002),
        ("admin", "admin.users.get", "rest", "ok", LATENCY_BUCKETS[0]),  # on a bound: that bucket
        ("admin", "admin.users.get", "rest", "not_found", 0.003),
        ("mail", "mail.threads.list", "jsonrpc", "ok", 0.3),
        ("mail", "mail.threads.list", "jsonrpc", "ok", 99.0),  # beyond the last bound: +Inf
    ]
    batched, direct = Metrics(), Metrics()
    for api, method, protocol, outcome, seconds in calls:
        batched.observe_call(api, method, protocol, outcome, seconds)
        direct.requests.labels(api, method, protocol, outcome).inc()
        direct.latency.labels(api, method, protocol).observe(seconds)
        if outcome != "ok":
            direct.errors.labels(api, method, outcome).inc()
    batched.drain()
    batched.drain()  # a second drain adds nothing

    def samples(m: Metrics) -> list[str]:
        text = generate_latest(m.registry).decode()
        return sorted(line for line in text.splitlines() if line and "_created" not in line)

    assert samples(batched) == samples(direct)
    assert (
        "mailroom_request_duration_seconds_bucket"
        '{api="mail",le="+Inf",method="mail.threads.list",protocol="jsonrpc"} 2.0' in samples(batched)
    )
